"""The route table: one row per operation drives Flask, validation and OpenAPI.

A Route names its method, its path (OpenAPI template syntax), the view that
answers it, its query parameters and its body schema.  ``register`` turns the
table into Flask rules whose endpoint parses and checks the query and the body
before calling the view; ``openapi.build`` turns the same table into the
OpenAPI document.  POST on an element takes Congress's ``?action=NAME``: such
a route lists its Actions, each with its own view and body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from congress_ha.api import datasources, policies, schema, system
from congress_ha.api.http import ApiError, json_response, parse_bool, read_json


@dataclass(frozen=True)
class Query:
    name: str
    kind: str = "bool"              # bool | str
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Action:
    name: str
    view: Callable[..., Any]
    summary: str
    body: dict | None = None
    body_required: bool = False
    response: dict | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    view: Callable[..., Any] | None
    summary: str
    tag: str
    query: tuple[Query, ...] = ()
    body: dict | None = None         # None: the operation reads no body
    body_required: bool = True
    ok: int = 200
    response: dict | None = None
    errors: tuple[int, ...] = (400, 404)
    auth: bool = True
    actions: tuple[Action, ...] = ()
    media: str = "application/json"  # of a success; errors are always JSON

    @property
    def flask_path(self) -> str:
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)

    @property
    def operation_id(self) -> str:
        """Unique per route: the views' module and name (two modules share names)."""
        if self.actions:
            name = f"{self.tag}_actions"
        else:
            name = f"{self.view.__module__.rsplit('.', 1)[-1]}_{self.view.__name__}"
        return f"{self.method.lower()}_{name.replace('-', '_')}"


@dataclass
class Call:
    """What a view gets: the path's values, the parsed query, the checked body."""

    path: dict[str, str]
    query: dict[str, Any]
    body: Any
    root: str
    extra: dict[str, Any] = field(default_factory=dict)


ACTION = Query("action", "str", "the operation to run", required=True)
TRACE = Query("trace", description="add a proof of each row, as text")

P, D, L, S = "policies", "data-sources", "library-policies", "system"
POLICY = "/v1/policies/{policy}"
DS = "/v1/data-sources/{datasource}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/", system.versions, "API versions", S, auth=False, errors=()),
    Route("GET", "/v1", system.version_v1, "The v1 API", S, errors=()),
    Route("GET", "/healthz", system.healthz, "Liveness: the HTTP stack answers", S,
          auth=False, errors=()),
    Route("GET", "/readyz", system.readyz,
          "Readiness: 200 while this PE holds the current policies and every datasource "
          "(503 otherwise), for the load balancer's check", S, auth=False, errors=(503,)),
    Route("GET", "/metrics", system.metrics,
          "This process's metrics in Prometheus text format (docs/operations.md); "
          "authenticated unless [api] metrics_open = true", S,
          response={"type": "string"}, errors=(), media="text/plain"),
    Route("GET", "/v1/openapi.json", system.openapi, "This document", S, errors=()),
    Route("GET", "/v1/ha/status", system.ha_status,
          "This node's view of the bus: peers, ready, seq positions, leaders", S,
          response=schema.OBJECT, errors=(503,)),

    Route("GET", "/v1/policies", policies.list_policies, "List policies", P,
          response=schema.POLICY_LIST, errors=(503,)),
    Route("POST", "/v1/policies", policies.create_policy,
          "Create a policy (optionally with rules, or from a library policy)", P,
          query=(Query("library_policy", "str",
                       "id or name of a library policy to copy; then send no body"),),
          body=schema.POLICY_IN, body_required=False, ok=201,
          response=schema.ref("Policy"), errors=(400, 404, 409, 503)),
    Route("GET", POLICY, policies.get_policy, "Show a policy (by id or name)", P,
          response=schema.ref("Policy")),
    Route("DELETE", POLICY, policies.delete_policy, "Delete a policy", P,
          response=schema.ref("Policy"), errors=(400, 404, 409, 503)),
    Route("POST", POLICY, None, "Run an action on a policy: simulate, execute", P,
          query=(ACTION, Query("trace", description="simulate: add a trace"),
                 Query("delta", description="simulate: answer with the changes")),
          errors=(400, 404, 503), actions=(
              Action("simulate", policies.simulate,
                     "Answer a query as if a sequence of updates had happened",
                     schema.SIMULATE_IN, True, schema.SIMULATE_OUT),
              Action("execute", policies.execute,
                     "Execute a datasource action named 'datasource:action'",
                     schema.EXECUTE_IN, True, schema.OBJECT))),
    Route("GET", POLICY + "/rules", policies.list_rules, "List a policy's rules", P,
          response=schema.RULE_LIST),
    Route("POST", POLICY + "/rules", policies.create_rule, "Add a rule", P,
          body=schema.RULE_IN, ok=201, response=schema.ref("Rule"),
          errors=(400, 404, 409, 503)),
    Route("GET", POLICY + "/rules/{rule_id}", policies.get_rule, "Show a rule", P,
          response=schema.ref("Rule")),
    Route("DELETE", POLICY + "/rules/{rule_id}", policies.delete_rule, "Delete a rule", P,
          response=schema.ref("Rule"), errors=(400, 404, 409, 503)),
    Route("GET", POLICY + "/tables", policies.list_tables, "List a policy's tables", P,
          response=schema.TABLE_LIST),
    Route("GET", POLICY + "/tables/{table}", policies.get_table, "Show a policy table", P,
          response=schema.ref("TableId")),
    Route("GET", POLICY + "/tables/{table}/rows", policies.list_rows,
          "Rows of a policy table", P, query=(TRACE,), response=schema.ref("Rows")),

    Route("GET", "/v1/librarypolicies", policies.list_library, "List library policies", L,
          query=(Query("include_rules", description="include each policy's rules "
                                                    "(default true)"),
                 Query("name", "str", "only the library policy of this name")),
          response=schema.LIBRARY_LIST, errors=(400, 503)),
    Route("POST", "/v1/librarypolicies", policies.create_library,
          "Add a library policy", L, body=schema.LIBRARY_IN, ok=201,
          response=schema.ref("LibraryPolicy"), errors=(400, 409, 503)),
    Route("GET", "/v1/librarypolicies/{library_policy}", policies.get_library,
          "Show a library policy", L,
          query=(Query("include_rules", description="include its rules (default true)"),),
          response=schema.ref("LibraryPolicy")),
    Route("PUT", "/v1/librarypolicies/{library_policy}", policies.replace_library,
          "Replace a library policy", L, body=schema.LIBRARY_IN,
          response=schema.ref("LibraryPolicy"), errors=(400, 404, 409, 503)),
    Route("DELETE", "/v1/librarypolicies/{library_policy}", policies.delete_library,
          "Delete a library policy", L, response=schema.ref("LibraryPolicy")),

    Route("GET", "/v1/data-sources", datasources.list_datasources, "List datasources", D,
          response=schema.DATASOURCE_LIST, errors=(503,)),
    Route("POST", "/v1/data-sources", datasources.create_datasource, "Add a datasource", D,
          body=schema.DATASOURCE_IN, ok=201, response=schema.ref("Datasource"),
          errors=(400, 409, 503)),
    Route("GET", DS, datasources.get_datasource, "Show a datasource (by id or name)", D,
          response=schema.ref("Datasource")),
    Route("DELETE", DS, datasources.delete_datasource, "Delete a datasource", D,
          response=schema.ref("Datasource"), errors=(404, 503)),
    Route("POST", DS, None, "Run an action on a datasource: execute, request-refresh", D,
          query=(ACTION,), errors=(400, 404, 503), actions=(
              Action("execute", datasources.execute, "Execute one of its actions",
                     schema.EXECUTE_IN, True, schema.OBJECT),
              Action("request-refresh", datasources.request_refresh,
                     "Ask its driver to poll now", None, False, schema.OBJECT))),
    Route("GET", DS + "/tables", datasources.list_tables, "List a datasource's tables", D,
          response=schema.TABLE_LIST, errors=(404, 503)),
    Route("GET", DS + "/tables/{table}", datasources.get_table, "Show a datasource table",
          D, response=schema.ref("TableId"), errors=(404, 503)),
    Route("GET", DS + "/tables/{table}/rows", datasources.list_rows,
          "Rows of a datasource table (this node's replica)", D,
          response=schema.ref("Rows"), errors=(404, 503)),
    Route("PUT", DS + "/tables/{table}/rows", datasources.replace_rows,
          "Replace the rows of a table of a push datasource", D, body=schema.ROWS_IN,
          response=schema.OBJECT, errors=(400, 404, 503)),
    Route("GET", DS + "/tables/{table}/spec", datasources.table_schema,
          "Columns of a datasource table", D, response=schema.ref("TableSchema"),
          errors=(404, 503)),
    Route("GET", DS + "/status", datasources.status, "Driver status (from the DSD)", D,
          response=schema.OBJECT, errors=(404, 503)),
    Route("GET", DS + "/actions", datasources.actions, "Actions a datasource accepts", D,
          response=schema.ACTION_LIST, errors=(404, 503)),
    Route("GET", DS + "/schema", datasources.datasource_schema,
          "Tables and columns of a datasource", D, response=schema.SCHEMA,
          errors=(404, 503)),
    Route("GET", "/v1/system/drivers", system.list_drivers, "List datasource drivers", S,
          response=schema.DRIVER_LIST, errors=()),
    Route("GET", "/v1/system/drivers/{driver}", system.get_driver, "Show a driver", S,
          response=schema.ref("Driver"), errors=(404,)),
)


def _parse_query(specs: tuple[Query, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        values = request.args.getlist(spec.name)
        if len(values) > 1:
            raise ApiError(400, f"query parameter {spec.name!r} may be given only once")
        if not values:
            if spec.required:
                raise ApiError(400, f"missing required query parameter {spec.name!r}")
            continue
        out[spec.name] = parse_bool(spec.name, values[0]) if spec.kind == "bool" \
            else values[0]
    return out


def _body(schema_: dict | None, required: bool) -> Any:
    body = read_json(request, required)
    if body is not None and schema_ is not None:
        schema.check(schema_, body)
    return body


def _endpoint(route: Route, service: Any, extra: dict[str, Any]) -> Callable[..., Response]:
    actions = {a.name: a for a in route.actions}

    def endpoint(**path: str) -> Response:
        query = _parse_query(route.query)
        view, body_schema, required = route.view, route.body, route.body_required
        if actions:
            action = actions.get(query["action"])
            if action is None:
                raise ApiError(400, f"unknown action {query['action']!r}; this resource "
                                    f"supports: {', '.join(actions)}")
            view, body_schema, required = action.view, action.body, action.body_required
        body = _body(body_schema, required) if body_schema is not None else None
        call = Call(path, query, body, request.host_url, extra)
        result = view(service, call)
        if isinstance(result, Response):
            return result
        headers = None
        if route.ok == 201 and isinstance(result, dict) and "id" in result:
            headers = {"Location": f"{request.path.rstrip('/')}/{result['id']}"}
        return json_response(result, route.ok, headers)

    endpoint.__name__ = route.operation_id
    return endpoint


def endpoint_name(route: Route) -> str:
    return f"{route.method} {route.path}"


BY_ENDPOINT = {endpoint_name(r): r for r in ROUTES}


def register(app: Flask, service: Any, extra: dict[str, Any]) -> None:
    for route in ROUTES:
        app.add_url_rule(route.flask_path, endpoint_name(route),
                         _endpoint(route, service, extra), methods=[route.method],
                         strict_slashes=False)

