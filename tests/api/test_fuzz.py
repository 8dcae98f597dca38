"""schemathesis, from /v1/openapi.json, against a real server: never a 5xx.

For every operation of the route table: valid requests with random ids,
valid requests aimed at existing objects (so that deep paths and bodies
reach the service), and invalid requests (schemathesis's negative mode).  A
bounded number of examples each keeps the module well under a minute.  Every
answer must be of the route's media type (JSON but for /metrics), and every
error JSON in Congress's error shape.

(schemathesis's own pytest loader does not run under pytest 9 yet, so the
operations are driven through hypothesis directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from congress_ha.api.routes import ROUTES
from tests.support.http import request
from tests.support.procs import wait_for

EXAMPLES = 60


@pytest.fixture(scope="module")
def target(solo):
    """The loaded schema and the ids of a few existing objects to aim at."""
    port = solo.api_port
    assert request(port, "POST", "/v1/policies", {"name": "fz"})[0] == 201
    status, rule = request(port, "POST", "/v1/policies/fz/rules", {"rule": "p(x) :- s(x)"})
    assert status == 201
    request(port, "POST", "/v1/policies/fz/rules", {"rule": "s(1)"})
    status, lib = request(port, "POST", "/v1/librarypolicies", {"name": "fzlib", "rules": []})
    assert status == 201
    assert request(port, "POST", "/v1/data-sources", {
        "name": "fzd", "driver": "push", "config": {"tables": {"t": ["a", "b"]}}})[0] == 201
    wait_for(lambda: request(port, "PUT", "/v1/data-sources/fzd/tables/t/rows",
                             [["x", 1]])[0] == 200, 10, "push datasource running")
    known = {"policy": "fz", "rule_id": rule["id"], "table": "t", "datasource": "fzd",
             "library_policy": lib["id"], "driver": "push"}
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/v1/openapi.json")
    return schema, f"http://127.0.0.1:{port}", known


@pytest.mark.parametrize("method, path", [(r.method, r.path) for r in ROUTES],
                         ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_no_server_errors(target, method, path):
    schema, base_url, known = target
    media = next(r.media for r in ROUTES if (r.method, r.path) == (method, path))
    operation = schema[path][method]
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    names = [n for n in known if "{" + n + "}" in path]
    if names and method != "DELETE":   # keep the aimed-at objects for the other operations
        fixed = {n: ("p" if n == "table" and "policies" in path else known[n]) for n in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE,
                                                path_parameters=fixed))
    if operation.body or operation.query or names:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=st.one_of(strategies))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(base_url=base_url, timeout=10)
        where = f"{case.method} {case.formatted_path} {case.query} {case.body!r:.300}"
        assert response.status_code < 500, f"{where} -> {response.status_code}: " \
                                           f"{response.text[:500]}"
        ctype = (response.headers.get("content-type") or [""])[0]
        assert ctype.startswith(media if response.status_code < 400
                                else "application/json"), where
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["error_code"] == response.status_code and error["message"], where

    run()
