"""The WSGI application (Flask) and its server (waitress) in a thread.

``create_app(service, settings)`` builds Congress's v1 API plus the HA
extension from the route table (routes.py) over a roles.service.Service.
Every answer is JSON; every error has Congress's error shape; a 500 is only
ever a bug, logged with its traceback.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from congress_ha.api import auth, openapi, routes, tls, tls_front
from congress_ha.api.http import ApiError, error_response
from congress_ha.api.rows import RowsCache
from congress_ha.config import limit
from congress_ha.engine import PolicyError
from congress_ha.errors import ServiceError
from congress_ha.metrics import Metrics
from congress_ha.threads import Supervised

LOG = logging.getLogger(__name__)



def create_app(service: Any, settings: Any, oslo_conf: Any = None,
               metrics: Metrics | None = None) -> Flask:
    """The API over ``service``; ``settings.api`` gives auth_strategy and token_file.

    Raises ValueError (naming the option and file) if the token file is needed
    and unusable. ``oslo_conf``: the service's oslo.config object, for
    auth_strategy = keystone (built from ``settings`` if not given). ``metrics``:
    the process's registry, served at /metrics (one of its own if not given).
    """
    app = Flask("congress_ha")
    max_body = limit(settings, "max_request_bytes")
    app.config["MAX_CONTENT_LENGTH"] = max_body
    strategy = getattr(settings.api, "auth_strategy", "noauth") or "noauth"
    metrics = metrics if metrics is not None else Metrics()
    routes.register(app, service, {"openapi": openapi.build(auth=strategy != "noauth"),
                                   "rows_cache": RowsCache(), "metrics": metrics})
    _time_requests(app, metrics)  # first: the time includes the auth check
    auth.install(app, settings, oslo_conf)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.data)

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        if exc.status >= 500 and exc.status != 503:
            LOG.error("%s %s failed: %s", request.method, request.path, exc.message)
        resp = error_response(exc.status, exc.message)
        if exc.status == 503:
            resp.headers["Retry-After"] = str(getattr(exc, "retry_after", 1))
        return resp

    @app.errorhandler(PolicyError)
    def policy_error(exc: PolicyError):
        # The engine's rejections are about the input by definition; the
        # Service should wrap them in InvalidInput, and where it does not yet,
        # they still must not become a 500.
        LOG.warning("%s %s: engine error not wrapped by the service: %s",
                    request.method, request.path, exc)
        return error_response(400, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = {404: f"the resource could not be found: {request.path}",
                   405: f"method {request.method} is not supported on {request.path}",
                   413: f"body larger than [limits] max_request_bytes = {max_body} "
                        "bytes; send less per request"}.get(
                       status, exc.description or exc.name)
        resp = error_response(status, message)
        if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(OperationalError)
    def database_away(exc: OperationalError):
        # The database is down or cut off (the driver's connection error): a
        # 503 to retry, not a 500; the detail (host, port) goes to the log.
        LOG.warning("%s %s: database unavailable: %s", request.method, request.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        resp = error_response(503, "the database is unavailable; retry later (the "
                                   "server log has the details)")
        resp.headers["Retry-After"] = "1"
        return resp

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        LOG.exception("%s %s: internal error", request.method, request.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server "
                                   "log has the details")

    return app


def _time_requests(app: Flask, metrics: Metrics) -> None:
    """Every answer's latency, by method and the route's template: a path never
    becomes a label (a client could make them without end)."""

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def observe(resp: Response) -> Response:
        started = g.get("started")
        if started is not None:
            route = routes.BY_ENDPOINT.get(request.endpoint or "")
            metrics.observe_request(request.method, route.path if route else "other",
                                    time.perf_counter() - started)
        return resp


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET  # a name: waitress resolves it the same way


class ApiServer:
    """waitress serving the app on host:port; with [api] tls_cert_file set, a TLS
    front (api/tls.py) on host:port and waitress behind it on a private socket."""

    def __init__(self, app: Flask, host: str, port: int, settings: Any = None):
        from waitress.server import create_server

        self.front = None
        where: dict[str, Any] = {"host": host, "port": port}
        if settings is not None and tls.enabled(settings):
            context = tls.server_context(settings)
            listen = socket.create_server((host, port), family=_family(host), backlog=1024,
                                          reuse_port=False)
            backend, name = tls_front.backend_socket()
            self.front = tls_front.TlsFront(listen, context, name,
                                      limit(settings, "api_connection_limit"))
            where = {"sockets": [backend]}
        # waitress reads a chunked body whole before the app sees it: its own
        # cap makes an endless body stop at the limit instead of filling /tmp.
        self.server = create_server(
            app, threads=8, ident="congress-ha",
            max_request_body_size=limit(settings, "max_request_bytes"),
            connection_limit=limit(settings, "api_connection_limit"),
            channel_timeout=limit(settings, "api_idle_timeout"), **where)
        self.closing = False
        self.thread = Supervised("api", self.server.run, stopping=lambda: self.closing)

    @property
    def threads(self) -> list[Supervised]:
        return [self.thread] + ([self.front.thread] if self.front else [])

    def start(self) -> None:
        self.thread.start()
        if self.front is not None:
            self.front.start()

    def listening(self) -> bool:
        """The socket is bound (create_server binds it) and its loop threads run."""
        return all(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        self.closing = True
        if self.front is not None:
            self.front.stop()
        self.server.close()
