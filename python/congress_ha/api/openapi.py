"""The OpenAPI 3.1 description, built from the route table (routes.ROUTES).

Served at ``GET /v1/openapi.json``; tests/api/test_fuzz.py feeds it to
schemathesis against a real server.
"""

from __future__ import annotations

import re
from typing import Any

from congress_ha.api import schema
from congress_ha.api.routes import ROUTES, Route

_REASONS = {400: "Bad input: the message says what is wrong; nothing changed",
            401: "Missing or wrong X-Auth-Token (auth_strategy = token)",
            404: "No such policy, rule, table, datasource or driver",
            409: "Already exists, or concurrent policy changes kept colliding",
            413: "Body larger than the API accepts",
            503: "The database or the datasource process cannot answer now"}


def _error(status: int) -> dict:
    return {"description": _REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": schema.ref("Error")}}}


def _json(schema_: dict, media: str = "application/json") -> dict:
    return {media: {"schema": schema_}}


def _operation(route: Route, auth: bool) -> dict[str, Any]:
    params: list[dict] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
        for name in re.findall(r"\{(\w+)\}", route.path)]
    for q in route.query:
        qschema: dict[str, Any] = {"type": "string"}
        if q.kind == "bool":
            qschema = {"type": "string", "enum": ["true", "false", "True", "False"]}
        if q.name == "action" and route.actions:
            qschema = {"type": "string", "enum": [a.name for a in route.actions]}
        params.append({"name": q.name, "in": "query", "required": q.required,
                       "description": q.description, "schema": qschema})
    description = route.summary
    if route.actions:
        description += ". Per action: " + "; ".join(
            f"{a.name}: {a.summary}" for a in route.actions)
    op: dict[str, Any] = {"operationId": route.operation_id,
                          "summary": route.summary, "description": description,
                          "tags": [route.tag]}
    if params:
        op["parameters"] = params
    bodies = [a.body for a in route.actions if a.body] if route.actions else (
        [route.body] if route.body and route.method in ("POST", "PUT") else [])
    if bodies:
        body_schema = bodies[0] if len(bodies) == 1 else {"oneOf": bodies}
        required = route.body_required and all(a.body_required for a in route.actions)
        op["requestBody"] = {"required": required, "content": _json(body_schema)}
    response = route.response
    if route.actions:
        outs = [a.response for a in route.actions if a.response]
        response = outs[0] if len(outs) == 1 else {"oneOf": outs} if outs else None
    ok: dict[str, Any] = {"description": "Success"}
    if response is not None:
        ok["content"] = _json(response, route.media)
    responses: dict[str, Any] = {str(route.ok): ok}
    statuses = set(route.errors)
    if bodies:
        statuses |= {400, 413}
    if auth and route.auth:
        statuses.add(401)
        op["security"] = [{"token": []}]
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    op["responses"] = responses
    return op


def build(auth: bool = False) -> dict[str, Any]:
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, auth)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "congress-ha REST API",
                 "version": "1",
                 "description": "Congress's v1 API as python-congressclient 2.0.1 uses "
                                "it, plus /healthz, /readyz, /metrics and /v1/ha/status. "
                                "Errors are {\"error\": {\"message\", \"error_code\", "
                                "\"error_data\"}}; see docs/api.md."},
        "paths": paths,
        "components": {"schemas": schema.COMPONENTS},
    }
    if auth:
        doc["components"]["securitySchemes"] = {
            "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}
    return doc
