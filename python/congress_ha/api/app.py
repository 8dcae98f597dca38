"""The WSGI application (Flask) and its server (waitress) in a thread.

Until the Congress v1 API lands (issue 3), it serves the HA endpoints:
``GET /healthz`` (liveness, cheap) and ``GET /v1/ha/status``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify

LOG = logging.getLogger(__name__)


def create_app(status: Callable[[], dict[str, Any]]) -> Flask:
    app = Flask("congress_ha")

    @app.get("/healthz")
    def healthz():
        return jsonify({"ok": True})

    @app.get("/v1/ha/status")
    def ha_status():
        return jsonify(status())

    @app.errorhandler(404)
    def not_found(_exc):
        return jsonify({"error": {"message": "no such resource", "code": 404}}), 404

    @app.errorhandler(405)
    def not_allowed(_exc):
        return jsonify({"error": {"message": "method not allowed", "code": 405}}), 405

    return app


class ApiServer:
    def __init__(self, app: Flask, host: str, port: int):
        from waitress.server import create_server

        self.server = create_server(app, host=host, port=port, threads=8,
                                    ident="congress-ha")
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.close()
