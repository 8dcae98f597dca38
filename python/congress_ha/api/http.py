"""Request and response plumbing: Congress's error body, JSON in and out.

Every error leaves as Congress's shape,
``{"error": {"message", "error_code", "error_data"}}``, with ``error_code``
equal to the HTTP status.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Request, Response

JSON = "application/json"


class ApiError(Exception):
    """A request the API refuses before or instead of calling the service."""

    def __init__(self, status: int, message: str, data: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.data = data


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    # json.dumps directly: Flask's provider adds sorting and a second pass we
    # do not need on the row-reading path (bench_api.py).
    return Response(json.dumps(body, separators=(",", ":")) + "\n", status=status,
                    mimetype=JSON, headers=headers)


def error_response(status: int, message: str, data: Any = None) -> Response:
    return json_response({"error": {"message": message, "error_code": status,
                                    "error_data": data}}, status)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json(request: Request, required: bool) -> Any:
    """The request body as JSON; None when there is none and none is required."""
    raw = request.get_data(cache=True)   # 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        if required:
            raise ApiError(400, "this request needs a JSON body")
        return None
    mimetype = (request.mimetype or JSON).lower()
    if mimetype != JSON and not mimetype.endswith("+json"):
        raise ApiError(400, f"unsupported Content-Type {request.mimetype!r}; send "
                            "'Content-Type: application/json'")
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(400, f"unsupported charset {charset!r}; send UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    if value is None and required:
        # JSON null is a body, but never the one a route wants: say so here, not
        # with an AttributeError in the view (the first wave's 500 on 7 routes).
        raise ApiError(400, "the body is JSON null; this request needs a JSON object "
                            "or list")
    return value


TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off", "none", "")


def parse_bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise ApiError(400, f"query parameter {name}={text!r}: expected true or false")
