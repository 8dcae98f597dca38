"""The lab's power switch: a host-side daemon that owns the nodes' power.

It listens on `<state>/power.sock` (a path-based unix socket, so the fence agent can
reach it from inside any node's network namespace) and speaks one JSON object per
line: {"op": "on"|"off"|"reboot"|"stop"|"status"|"list"|"ping"|"shutdown",
"node": NAME}. It is the parent of every node (so it reaps them), records their
PIDs in the state folder, and powers a node off by SIGKILL of the node's PID 1.
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from . import netns
from . import node as nodes
from .plan import LabPlan, NodePlan
from .state import ProcRecord, load_plan, node_pids, write_json

log = logging.getLogger("congress_ha.lab.power")


class PowerError(RuntimeError):
    pass


class PowerSwitch:
    """Power state of every node of one lab."""

    def __init__(self, plan: LabPlan) -> None:
        self.plan = plan
        self.locks = {n.name: threading.Lock() for n in plan.nodes}
        self.procs: dict[str, subprocess.Popen] = {}
        self.events: list[dict] = []  # fencing and power history, for tests and status
        # Every fence agent request (monitors included): did it carry the password?
        self.fence_requests: collections.deque[dict] = collections.deque(maxlen=1000)

    def _node(self, name: str) -> NodePlan:
        try:
            return self.plan.node(name)
        except ValueError as e:
            raise PowerError(str(e)) from None

    def is_on(self, node: NodePlan) -> bool:
        rec = node_pids(self.plan, node.short).get("init")
        return bool(rec and rec.alive())

    def on(self, node: NodePlan) -> dict:
        if self.is_on(node):
            return {"status": "on", "changed": False}
        boot_id = uuid.uuid4().hex[:12]
        self._nic(node, up=True)
        ndir = self.plan.node_dir(node)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
               "LAB_BOOT_ID": boot_id}  # fmt: skip
        with open(ndir / "console.log", "ab") as out:
            p = subprocess.Popen(nodes.boot_command(self.plan, node), stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, env=env, cwd="/",
                                 start_new_session=True)  # fmt: skip
        init = self._child_of(p.pid, timeout=10)
        if init is None:
            p.kill()
            p.wait()
            raise PowerError(f"node {node.name}: PID 1 did not start (see {ndir}/console.log)")
        nodes.record(self.plan, node, p.pid, init, boot_id)
        self.procs[node.name] = p
        threading.Thread(target=self._reap, args=(node, p), daemon=True).start()
        log.info("%s on (holder %d, pid 1 = %d, boot %s)", node.name, p.pid, init, boot_id)
        return {"status": "on", "changed": True, "boot_id": boot_id, "pid": init}

    @staticmethod
    def _child_of(pid: int, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = f.read().split()
                # `ip netns exec` execs unshare in place; unshare --fork has one child.
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                return None
            if kids and comm == "unshare":
                return int(kids[0])
            time.sleep(0.005)
        return None

    def _reap(self, node: NodePlan, p: subprocess.Popen) -> None:
        rc = p.wait()
        log.info("%s: node process exited (%s)", node.name, rc)
        with self.locks[node.name]:
            if not self.is_on(node):
                self._nic(node, up=False)

    def _nic(self, node: NodePlan, up: bool) -> None:
        # A powered-off node must not answer on the network: its namespace (and the
        # kernel's ICMP and ARP replies) outlive its processes, so its NIC goes down.
        netns.ip("-n", node.netns, "link", "set", "eth0", "up" if up else "down", check=False)

    def off(self, node: NodePlan) -> dict:
        pids = node_pids(self.plan, node.short)
        init = pids.get("init")
        if not (init and init.alive()):
            return {"status": "off", "changed": False}
        init.kill(signal.SIGKILL)
        if not init.wait_gone(10):
            raise PowerError(f"node {node.name}: PID 1 {init.pid} survived SIGKILL for 10 s")
        holder = pids.get("holder")
        if holder:
            holder.wait_gone(5)
        self._nic(node, up=False)
        log.info("%s off", node.name)
        return {"status": "off", "changed": True}

    def stop(self, node: NodePlan, timeout: float) -> dict:
        init = node_pids(self.plan, node.short).get("init")
        if not (init and init.alive()):
            return {"status": "off", "changed": False}
        init.kill(signal.SIGTERM)
        if init.wait_gone(timeout):
            self._nic(node, up=False)
            return {"status": "off", "changed": True, "clean": True}
        self.off(node)
        return {"status": "off", "changed": True, "clean": False}

    def handle(self, req: dict) -> dict:
        op = req.get("op")
        given = req.pop("password", None)
        if req.get("by") == "fence":
            self.fence_requests.append({"op": op, "node": req.get("node"), "time": time.time(),
                                        "password": given is not None})
        if given is not None and not (self.plan.fence_secret and hmac.compare_digest(
                str(given).encode(), self.plan.fence_secret.encode())):
            raise PowerError("wrong password: not this lab's fence password (drawn at "
                             "`congress-ha-lab up`, kept in the lab's state)")
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "list":
            return {"ok": True, "nodes": {n.name: ("on" if self.is_on(n) else "off")
                                          for n in self.plan.cluster_nodes}}  # fmt: skip
        if op == "events":
            return {"ok": True, "events": self.events}
        if op == "fence_requests":
            return {"ok": True, "requests": list(self.fence_requests)}
        if op == "shutdown":
            for n in self.plan.nodes:
                with self.locks[n.name]:
                    self.off(n)
            threading.Thread(target=self._exit, daemon=True).start()
            return {"ok": True}
        node = self._node(str(req.get("node", "")))
        with self.locks[node.name]:
            if op == "status":
                res = {"status": "on" if self.is_on(node) else "off"}
            elif op == "on":
                res = self.on(node)
            elif op == "off":
                res = self.off(node)
            elif op == "reboot":
                self.off(node)
                res = self.on(node)
            elif op == "stop":
                res = self.stop(node, float(req.get("timeout", 120)))
            else:
                raise PowerError(f"unknown op {op!r}")
        if op in ("on", "off", "reboot", "stop"):
            self.events.append({"op": op, "node": node.name, "by": req.get("by", "cli"),
                                "time": time.time(), "changed": res.get("changed"),
                                "password": given is not None})  # fmt: skip
        return {"ok": True, **res}

    def _exit(self) -> None:
        time.sleep(0.1)  # let the reply reach the client
        try:
            self.plan.power_socket.unlink()
        except OSError:
            pass
        os._exit(0)


def serve(plan: LabPlan) -> None:
    switch = PowerSwitch(plan)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                try:
                    res = switch.handle(json.loads(line))
                except (PowerError, ValueError) as e:
                    res = {"ok": False, "error": str(e)}
                except Exception as e:  # noqa: BLE001 - the switch must keep serving
                    log.exception("a request failed (its password, if any, not shown)")
                    res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                self.wfile.write((json.dumps(res) + "\n").encode())
                self.wfile.flush()

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    path = plan.power_socket
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    server = Server(str(path), Handler)
    os.chmod(path, 0o600)
    write_json(plan.state_dir / "power.pid", ProcRecord.of(os.getpid()).to_json())
    signal.signal(signal.SIGTERM, lambda *_: switch._exit())
    log.info("power switch of lab %s on %s", plan.name, path)
    server.serve_forever()


def request(sock: Path, req: dict, timeout: float = 150) -> dict:
    """One request to a lab's power switch (raises PowerError when it fails)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(sock))
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as e:
        raise PowerError(f"power switch {sock}: {e}") from None
    finally:
        s.close()
    res = json.loads(buf or b"{}")
    if not res.get("ok"):
        raise PowerError(res.get("error", "no answer from the power switch"))
    return res


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s power %(message)s")
    plan = load_plan(Path(argv[0]))
    if plan is None:
        print(f"no lab in {argv[0]}", file=sys.stderr)
        return 1
    serve(plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
