"""A TCP relay for ssh's ProxyCommand: stdin/stdout <-> HOST:PORT.

The inventory runs it inside the lab's namespace (`ip netns exec <lab>-lan python -m
congress_ha.lab.relay %h %p`), so that ssh and Ansible on the host reach the nodes
without any route to 203.0.113.0/24 in the root namespace.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(host: str, port: int) -> int:
    try:
        conn = socket.create_connection((host, port), timeout=10)
    except OSError as e:
        print(f"relay: {host}:{port}: {e}", file=sys.stderr)
        return 1
    conn.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "in")
    sel.register(conn, selectors.EVENT_READ, "net")
    while True:
        for key, _ in sel.select():
            if key.data == "in":
                data = os.read(0, 65536)
                if not data:
                    sel.unregister(0)
                    conn.shutdown(socket.SHUT_WR)
                    continue
                conn.sendall(data)
            else:
                data = conn.recv(65536)
                if not data:
                    return 0
                view = memoryview(data)
                while view:
                    n = os.write(1, view)
                    view = view[n:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m congress_ha.lab.relay HOST PORT", file=sys.stderr)
        return 2
    return relay(argv[0], int(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
