"""The local control socket, client half: how congress-ha-ctl asks a process.

One Unix socket per process, ``<run_dir>/<role>.sock``; a request is one JSON
line ``{"cmd": "health"|"status"|"leader"|"metrics", "depth": N}``, the answer
one JSON document (``metrics``: ``{"ok": true, "text": "<Prometheus text>"}``).
This module imports almost nothing: it runs in every Pacemaker monitor and
must stay cheap.  The serving half is ``control_server``.
"""

from __future__ import annotations

import json
import os
import socket


class NotRunning(Exception):
    """No process answers on the socket."""


def socket_path(run_dir: str, role: str) -> str:
    return os.path.join(run_dir, f"{role}.sock")


def ask(path: str, cmd: str, timeout: float = 2.0, **params) -> dict:
    """Send one request; NotRunning if nothing listens, OSError on other trouble."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NotRunning(f"nothing listens on {path} ({exc.strerror})") from None
        sock.sendall((json.dumps({"cmd": cmd, **params}) + "\n").encode())
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    finally:
        sock.close()
    return json.loads(b"".join(chunks).decode() or "{}")
