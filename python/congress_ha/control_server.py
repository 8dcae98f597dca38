"""The local control socket, serving half: one thread answering congress-ha-ctl.

See ``control`` for the protocol.
"""

from __future__ import annotations

import json
import logging
import os
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from congress_ha.control import NotRunning, ask

LOG = logging.getLogger(__name__)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            request = json.loads(self.rfile.readline().decode() or "{}")
            answer = self.server.dispatch(request)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - answer with the error, keep serving
            LOG.exception("control request failed")
            answer = {"ok": False, "reason": f"internal error: {exc}"}
        self.wfile.write(json.dumps(answer, default=str).encode())


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ControlServer:
    def __init__(self, path: str, dispatch: Callable[[dict[str, Any]], dict[str, Any]]):
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._check_stale()
        self.server = _Server(path, _Handler)
        self.server.dispatch = dispatch  # type: ignore[attr-defined]
        os.chmod(path, 0o660)
        self.thread = threading.Thread(target=self.server.serve_forever, name="control",
                                       kwargs={"poll_interval": 0.2}, daemon=True)

    def _check_stale(self) -> None:
        if not os.path.exists(self.path):
            return
        try:
            ask(self.path, "ping", timeout=1.0)
        except NotRunning:
            os.unlink(self.path)  # left by a process that died
            return
        except OSError:
            os.unlink(self.path)
            return
        raise RuntimeError(f"another process already answers on {self.path}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
