"""A local stand-in for Keystone's token validation, served over real HTTP.

keystonemiddleware (in the server under test) talks to it exactly as it
talks to Keystone: version discovery at ``/`` and ``/v3``, then
``GET /v3/auth/tokens`` with its own service token in ``X-Auth-Token`` and the
user's in ``X-Subject-Token``. Tokens are issued by the test (``issue``) with
the roles it chooses; an unknown or revoked token answers 404, as Keystone
does. ``validations`` counts the calls, so a test can see the middleware ask.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_TOKEN = "svc-" + uuid.uuid4().hex


class FakeKeystone:
    def __init__(self) -> None:
        self.tokens: dict[str, dict] = {}
        self.validations = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKeystone:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def issue(self, roles: list[str], project: str = "demo") -> str:
        token = "tok-" + uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        self.tokens[token] = {
            "methods": ["password"], "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "expires_at": (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "user": {"id": "u-" + project, "name": "user-" + project,
                     "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p-" + project, "name": project,
                        "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r-" + r, "name": r} for r in roles], "catalog": [],
        }
        return token

    def revoke(self, token: str) -> None:
        self.tokens.pop(token, None)

    def _version(self) -> dict:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{self.url}/v3/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.identity-v3+json"}]}

    def _handler(self):
        ks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0].rstrip("/")
                if path == "":
                    self._send(300, {"versions": {"values": [ks._version()]}})
                elif path == "/v3":
                    self._send(200, {"version": ks._version()})
                elif path == "/v3/auth/tokens":
                    ks.validations += 1
                    if self.headers.get("X-Auth-Token") != SERVICE_TOKEN:
                        self._send(401, {"error": {"code": 401, "message": "service token"}})
                        return
                    subject = self.headers.get("X-Subject-Token", "")
                    body = ks.tokens.get(subject)
                    if body is None:
                        self._send(404, {"error": {"code": 404, "message": "token not found"}})
                    else:
                        self._send(200, {"token": body}, {"X-Subject-Token": subject})
                else:
                    self._send(404, {"error": {"code": 404, "message": self.path}})

        return Handler
