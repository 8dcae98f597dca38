"""The Flask app against a fake Service: shapes, status codes, errors, auth."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from congress_ha.api.app import create_app
from congress_ha.api.routes import ROUTES
from congress_ha.errors import Conflict, Unavailable
from tests.api.fake_service import FakeService


def settings(strategy: str = "noauth", token_file: str | None = None):
    return SimpleNamespace(api=SimpleNamespace(auth_strategy=strategy, token_file=token_file))


@pytest.fixture
def svc() -> FakeService:
    return FakeService()


@pytest.fixture
def client(svc):
    return create_app(svc, settings()).test_client()


def error_of(resp, status: int) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"}
    assert body["error"]["error_code"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "error_data" in body["error"]
    return body["error"]["message"]


def make_policy(client, name="p", **extra) -> dict:
    resp = client.post("/v1/policies", json={"name": name, **extra})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def make_push(client, name="in", tables=None) -> dict:
    resp = client.post("/v1/data-sources", json={
        "name": name, "driver": "push",
        "config": {"tables": tables or {"alarm": ["id", "level"]}}})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


# -- versions, liveness, HA, OpenAPI ---------------------------------------------

def test_root_lists_v1_as_current(client):
    resp = client.get("/")
    assert resp.status_code == 200
    (v1,) = resp.get_json()["versions"]
    assert v1["id"] == "v1" and v1["status"] == "CURRENT"
    assert v1["links"][0]["href"].endswith("/v1/")


def test_v1_root_describes_the_version(client):
    assert client.get("/v1").get_json()["version"]["id"] == "v1"
    assert client.get("/v1/").status_code == 200


def test_healthz_is_ok(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"ok": True}


def test_ha_status_is_the_services_view(client):
    assert client.get("/v1/ha/status").get_json()["member"] == "solo:all"


def test_openapi_documents_every_route(client):
    doc = client.get("/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert str(route.ok) in op["responses"]
        if route.path.count("{"):
            assert {p["name"] for p in op["parameters"] if p["in"] == "path"}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == len(ROUTES)
    post_policy = doc["paths"]["/v1/policies/{policy}"]["post"]
    actions = next(p for p in post_policy["parameters"] if p["name"] == "action")
    assert actions["schema"]["enum"] == ["simulate", "execute"]


# -- policies ------------------------------------------------------------------------

def test_policy_list_has_the_default_policies(client):
    names = {p["name"] for p in client.get("/v1/policies").get_json()["results"]}
    assert names == {"classification", "action"}


def test_create_policy_answers_201_with_location_and_congress_shape(client):
    resp = client.post("/v1/policies", json={"name": "web", "description": "d",
                                             "abbreviation": "w", "kind": "nonrecursive"})
    assert resp.status_code == 201
    body = resp.get_json()
    assert set(body) == {"id", "name", "abbreviation", "description", "owner_id", "kind"}
    assert body["name"] == "web" and body["owner_id"] == "user"
    assert resp.headers["Location"].endswith(f"/v1/policies/{body['id']}")


def test_create_policy_with_rules_returns_them(client):
    body = make_policy(client, "r", rules=[{"rule": "p(x) :- q(x)", "name": "n1"}])
    assert [r["rule"] for r in body["rules"]] == ["p(x) :- q(x)"]
    assert body["rules"][0]["name"] == "n1"


def test_create_policy_with_a_bad_rule_creates_nothing(client):
    msg = error_of(client.post("/v1/policies", json={"name": "bad", "rules": [
        {"rule": "p(x) :- q(y)"}]}), 400)
    assert "p(x) :- q(y)" in msg
    assert client.get("/v1/policies/bad").status_code == 404


def test_get_policy_by_id_or_name(client):
    created = make_policy(client)
    assert client.get(f"/v1/policies/{created['id']}").get_json() == created
    assert client.get("/v1/policies/p").get_json()["id"] == created["id"]


def test_unknown_policy_is_404(client):
    assert "nope" in error_of(client.get("/v1/policies/nope"), 404)


def test_duplicate_policy_is_409(client):
    make_policy(client)
    assert "already exists" in error_of(client.post("/v1/policies", json={"name": "p"}), 409)


@pytest.mark.parametrize("body, says", [
    ({}, "missing field 'name'"),
    ({"name": 5}, "body.name: expected string"),
    ({"name": ""}, "body.name: must not be empty"),
    ({"name": "p", "abbreviation": "toolong"}, "longer than 5"),
    ({"name": "p", "kind": "fancy"}, "'fancy' is not one of"),
    ({"name": "p", "colour": "red"}, "unknown field 'colour'"),
    ({"name": "p", "rules": "p(1)"}, "body.rules: expected array"),
    ({"name": "p", "rules": [{"name": "x"}]}, "body.rules[0]: missing field 'rule'"),
    ([1, 2], "body: expected object"),
    ({"name": "has space"}, "use letters"),
])
def test_bad_policy_bodies_are_400_and_say_why(client, body, says):
    assert says in error_of(client.post("/v1/policies", json=body), 400)
    assert len(client.get("/v1/policies").get_json()["results"]) == 2


@pytest.mark.parametrize("data, ctype, says", [
    (b"{not json", "application/json", "not valid JSON"),
    (b'{"name": NaN}', "application/json", "not valid JSON"),
    (b"\xff\xfe", "application/json", "not valid UTF-8"),
    (b'{"name": "p"}', "text/plain", "unsupported Content-Type"),
    (b'{"name": "p"}', "application/json; charset=latin-1", "unsupported charset"),
    (b"", "application/json", "needs a JSON body"),
    (b"[" * 100000 + b"]" * 100000, "application/json", "not valid JSON"),
])
def test_malformed_bodies_are_400(client, data, ctype, says):
    assert says in error_of(client.post("/v1/policies", data=data, content_type=ctype), 400)


def test_oversized_body_is_413(client):
    big = b'{"name": "' + b"x" * (8 * 1024 * 1024 + 10) + b'"}'
    answer = client.post("/v1/policies", data=big, content_type="application/json")
    assert "larger than [limits] max_request_bytes" in error_of(answer, 413)


def test_delete_policy_returns_it(client):
    created = make_policy(client)
    assert client.delete("/v1/policies/p").get_json()["id"] == created["id"]
    assert client.get("/v1/policies/p").status_code == 404


def test_default_policy_cannot_be_deleted(client):
    error_of(client.delete("/v1/policies/classification"), 400)


# -- rules -----------------------------------------------------------------------------

def test_rule_lifecycle(client):
    make_policy(client)
    resp = client.post("/v1/policies/p/rules", json={"rule": "q(1)", "name": "one",
                                                     "comment": "c"})
    assert resp.status_code == 201
    rule = resp.get_json()
    assert set(rule) == {"id", "rule", "name", "comment"} and rule["rule"] == "q(1)"
    assert resp.headers["Location"].endswith(f"/rules/{rule['id']}")
    assert client.get(f"/v1/policies/p/rules/{rule['id']}").get_json() == rule
    assert client.get("/v1/policies/p/rules").get_json() == {"results": [rule]}
    assert client.delete(f"/v1/policies/p/rules/{rule['id']}").get_json() == rule
    assert client.get("/v1/policies/p/rules").get_json() == {"results": []}


def test_rejected_rule_is_400_with_the_engines_message(client):
    make_policy(client)
    msg = error_of(client.post("/v1/policies/p/rules", json={"rule": "p(x) :- q(x,"}), 400)
    assert "syntax error" in msg and "line 1" in msg
    assert client.get("/v1/policies/p/rules").get_json() == {"results": []}


def test_recursive_rule_in_nonrecursive_policy_is_400(client):
    make_policy(client)
    client.post("/v1/policies/p/rules", json={"rule": "a(x) :- b(x)"})
    assert "recursive" in error_of(
        client.post("/v1/policies/p/rules", json={"rule": "b(x) :- a(x)"}), 400)


@pytest.mark.parametrize("body, says", [
    ({}, "missing field 'rule'"), ({"rule": ""}, "must not be empty"),
    ({"rule": 3}, "expected string"), ({"rule": "p(1)", "name": 1}, "body.name"),
])
def test_bad_rule_bodies_are_400(client, body, says):
    make_policy(client)
    assert says in error_of(client.post("/v1/policies/p/rules", json=body), 400)


def test_rules_of_unknown_policy_and_unknown_rule_are_404(client):
    error_of(client.get("/v1/policies/nope/rules"), 404)
    make_policy(client)
    error_of(client.get("/v1/policies/p/rules/nope"), 404)
    error_of(client.delete("/v1/policies/p/rules/nope"), 404)


# -- tables, rows, trace ------------------------------------------------------------

def test_policy_tables_and_rows(client):
    make_policy(client)
    for text in ("q(1)", "q(2)", 'r("a", 1.5)', "p(x) :- q(x)"):
        assert client.post("/v1/policies/p/rules", json={"rule": text}).status_code == 201
    tables = {t["id"] for t in client.get("/v1/policies/p/tables").get_json()["results"]}
    assert {"p", "q", "r"} <= tables
    assert client.get("/v1/policies/p/tables/p").get_json() == {"id": "p"}
    error_of(client.get("/v1/policies/p/tables/zz"), 404)
    rows = client.get("/v1/policies/p/tables/p/rows").get_json()
    assert rows == {"results": [{"data": [1]}, {"data": [2]}]}
    assert client.get("/v1/policies/p/tables/r/rows").get_json() == {
        "results": [{"data": ["a", 1.5]}]}
    error_of(client.get("/v1/policies/p/tables/zz/rows"), 404)


def test_rows_with_trace(client):
    make_policy(client)
    client.post("/v1/policies/p/rules", json={"rule": "q(1)"})
    client.post("/v1/policies/p/rules", json={"rule": "p(x) :- q(x)"})
    body = client.get("/v1/policies/p/tables/p/rows?trace=True").get_json()
    assert body["results"] == [{"data": [1]}]
    assert isinstance(body["trace"], str) and "q(1)" in body["trace"]
    assert "trace" not in client.get("/v1/policies/p/tables/p/rows?trace=false").get_json()


def test_bad_boolean_query_is_400(client):
    make_policy(client)
    assert "expected true or false" in error_of(
        client.get("/v1/policies/p/tables/p/rows?trace=maybe"), 400)


# -- simulate and execute on a policy ------------------------------------------------

def _sim(client, query="p(x)", sequence="s+(3)", params="trace=False&delta=False", **body):
    return client.post(f"/v1/policies/p?action=simulate&{params}",
                       json={"query": query, "sequence": sequence, "action_policy": "action",
                             **body})


def test_simulate_answers_as_if_the_sequence_happened(client):
    make_policy(client)
    client.post("/v1/policies/p/rules", json={"rule": "p(x) :- s(x)"})
    client.post("/v1/policies/p/rules", json={"rule": "s(1)"})
    resp = _sim(client)
    assert resp.status_code == 200
    assert resp.get_json() == {"result": ["p(1)", "p(3)"]}
    # and nothing changed
    assert client.get("/v1/policies/p/tables/p/rows").get_json()["results"] == [
        {"data": [1]}]


def test_simulate_delta_and_trace(client):
    make_push(client)
    client.put("/v1/data-sources/in/tables/alarm/rows", json=[["a", 1], ["b", 2]])
    make_policy(client)
    client.post("/v1/policies/p/rules", json={"rule": "p(x) :- in:alarm(x, y)"})
    body = _sim(client, sequence='in:alarm+("c", 3) in:alarm-("a", 1)',
                params="trace=True&delta=True").get_json()
    assert body["result"] == ['p+("c")', 'p-("a")']
    assert isinstance(body["trace"], str)


def test_simulate_with_string_values_quotes_them(client):
    make_policy(client)
    client.post("/v1/policies/p/rules", json={"rule": "p(x) :- s(x)"})
    assert _sim(client, sequence='s+("a b")').get_json()["result"] == ['p("a b")']


@pytest.mark.parametrize("url, body, says", [
    ("/v1/policies/p", {"query": "p(x)", "sequence": ""}, "missing required query"),
    ("/v1/policies/p?action=fly", {}, "unknown action 'fly'"),
    ("/v1/policies/p?action=simulate&action=simulate", {}, "only once"),
    ("/v1/policies/p?action=simulate", {"sequence": ""}, "missing field 'query'"),
    ("/v1/policies/p?action=simulate", {"query": "p(x)", "sequence": "s+(x"},
     "syntax error"),
    ("/v1/policies/p?action=simulate", {"query": "   ", "sequence": ""}, "expected one atom"),
    ("/v1/policies/p?action=simulate&delta=sure", {"query": "p(x)", "sequence": ""},
     "expected true or false"),
])
def test_bad_simulate_requests_are_400(client, url, body, says):
    make_policy(client)
    client.post("/v1/policies/p/rules", json={"rule": "p(x) :- s(x)"})
    assert says in error_of(client.post(url, json=body), 400)


def test_simulate_on_unknown_policy_is_404(client):
    error_of(client.post("/v1/policies/nope?action=simulate",
                         json={"query": "p(x)", "sequence": ""}), 404)


def test_execute_through_a_policy_names_datasource_and_action(client, svc):
    make_policy(client)
    make_push(client, "out")
    resp = client.post("/v1/policies/p?action=execute",
                       json={"name": "out:log", "args": {"positional": ["x", 1]}})
    assert resp.status_code == 200 and resp.get_json() == {}
    assert svc.executed == [("out", "log", ["x", 1])]
    assert "datasource:action" in error_of(client.post(
        "/v1/policies/p?action=execute", json={"name": "log"}), 400)


# -- library policies -----------------------------------------------------------------

LIB = {"name": "lib1", "description": "a library policy", "abbreviation": "lb",
       "kind": "nonrecursive", "rules": [{"rule": "p(x) :- q(x)", "name": "r1",
                                          "comment": "c"}]}


def test_library_lifecycle(client):
    resp = client.post("/v1/librarypolicies", json=LIB)
    assert resp.status_code == 201
    lib = resp.get_json()
    assert lib["name"] == "lib1" and lib["rules"] == LIB["rules"]
    assert client.get(f"/v1/librarypolicies/{lib['id']}").get_json() == lib
    listed = client.get("/v1/librarypolicies?include_rules=False").get_json()["results"]
    assert listed == [{k: v for k, v in lib.items() if k != "rules"}]
    assert client.get("/v1/librarypolicies?name=lib1").get_json()["results"] == [lib]
    assert client.get("/v1/librarypolicies?name=zz").get_json()["results"] == []
    replaced = client.put(f"/v1/librarypolicies/{lib['id']}",
                          json={**LIB, "description": "new", "rules": []})
    assert replaced.status_code == 200
    assert replaced.get_json()["description"] == "new"
    assert replaced.get_json()["id"] == lib["id"]
    assert client.delete("/v1/librarypolicies/lib1").get_json()["id"] == lib["id"]
    error_of(client.get(f"/v1/librarypolicies/{lib['id']}"), 404)


def test_library_errors(client):
    error_of(client.post("/v1/librarypolicies", json={"rules": []}), 400)
    assert "syntax" in error_of(client.post("/v1/librarypolicies", json={
        "name": "x", "rules": [{"rule": "p(x"}]}), 400)
    client.post("/v1/librarypolicies", json=LIB)
    error_of(client.post("/v1/librarypolicies", json=LIB), 409)
    error_of(client.put("/v1/librarypolicies/nope", json=LIB), 404)
    error_of(client.delete("/v1/librarypolicies/nope"), 404)


def test_create_policy_from_library(client):
    lib = client.post("/v1/librarypolicies", json=LIB).get_json()
    resp = client.post(f"/v1/policies?library_policy={lib['id']}")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["name"] == "lib1" and [r["rule"] for r in body["rules"]] == ["p(x) :- q(x)"]
    assert "library" in error_of(client.post(f"/v1/policies?library_policy={lib['id']}",
                                             json={"name": "z"}), 400)
    error_of(client.post("/v1/policies?library_policy=nope"), 404)


# -- datasources ----------------------------------------------------------------------

def test_datasource_lifecycle(client, svc):
    ds = make_push(client)
    assert set(ds) == {"id", "name", "driver", "description", "config", "enabled"}
    assert ds["enabled"] is True
    assert client.get("/v1/data-sources").get_json()["results"] == [ds]
    assert client.get("/v1/data-sources/in").get_json() == ds
    assert client.get(f"/v1/data-sources/{ds['id']}").get_json() == ds
    assert client.get("/v1/data-sources/in/tables").get_json() == {"results": [{"id": "alarm"}]}
    assert client.get("/v1/data-sources/in/tables/alarm").get_json() == {"id": "alarm"}
    error_of(client.get("/v1/data-sources/in/tables/zz"), 404)
    spec = client.get("/v1/data-sources/in/tables/alarm/spec").get_json()
    assert spec["table_id"] == "alarm"
    assert [c["name"] for c in spec["columns"]] == ["id", "level"]
    assert client.get("/v1/data-sources/in/schema").get_json() == {"tables": [spec]}
    assert client.get("/v1/data-sources/in/status").get_json()["initialized"] is True
    assert client.get("/v1/data-sources/in/actions").get_json() == {"results": []}
    assert client.delete("/v1/data-sources/in").get_json()["id"] == ds["id"]
    error_of(client.get("/v1/data-sources/in"), 404)


def test_push_rows_as_lists_or_objects_replaces_the_table(client, svc):
    make_push(client)
    resp = client.put("/v1/data-sources/in/tables/alarm/rows",
                      json=[["disk", 3], {"level": 1, "id": "cpu"}])
    assert resp.status_code == 200
    assert svc.pushed == [("in", "alarm", [["disk", 3], ["cpu", 1]])]
    rows = client.get("/v1/data-sources/in/tables/alarm/rows").get_json()
    assert rows == {"results": [{"data": ["cpu", 1]}, {"data": ["disk", 3]}]}
    client.put("/v1/data-sources/in/tables/alarm/rows", json=[])
    assert client.get("/v1/data-sources/in/tables/alarm/rows").get_json() == {"results": []}


@pytest.mark.parametrize("rows, says", [
    ({"id": 1}, "body: expected array"),
    ([["a"]], "1 values for 2 columns"),
    ([{"id": "a"}], "missing: level"),
    ([{"id": "a", "level": 1, "x": 2}], "unknown: x"),
    ([["a", True]], "matches none"),
    ([["a", None]], "matches none"),
    ([["a", [1]]], "matches none"),
    (["a"], "matches none"),
])
def test_bad_rows_are_400_and_push_nothing(client, svc, rows, says):
    make_push(client)
    assert says in error_of(client.put("/v1/data-sources/in/tables/alarm/rows", json=rows), 400)
    assert svc.pushed == []


def test_push_into_unknown_table_or_datasource_is_404(client):
    make_push(client)
    error_of(client.put("/v1/data-sources/in/tables/zz/rows", json=[]), 404)
    error_of(client.put("/v1/data-sources/zz/tables/alarm/rows", json=[]), 404)


@pytest.mark.parametrize("body, status, says", [
    ({"driver": "push"}, 400, "missing field 'name'"),
    ({"name": "x"}, 400, "missing field 'driver'"),
    ({"name": "x", "driver": "push", "config": []}, 400, "body.config: expected object"),
    ({"name": "x", "driver": "push", "config": {"tables": {"t": ["a"]}}, "enabled": "yes"},
     400, "body.enabled: expected boolean"),
    ({"name": "x", "driver": "warp"}, 400, "unknown driver"),
    ({"name": "x", "driver": "push", "config": {}}, 400, "needs config"),
    ({"name": "in", "driver": "push", "config": {"tables": {"t": ["a"]}}}, 409,
     "already exists"),
])
def test_bad_datasource_bodies(client, body, status, says):
    make_push(client)
    assert says in error_of(client.post("/v1/data-sources", json=body), status)
    assert len(client.get("/v1/data-sources").get_json()["results"]) == 1


def test_datasource_actions_execute_and_refresh(client, svc):
    client.post("/v1/data-sources", json={"name": "out", "driver": "file", "config": {}})
    assert client.get("/v1/data-sources/out/actions").get_json() == {
        "results": [], "any_action": True}
    resp = client.post("/v1/data-sources/out?action=execute",
                       json={"name": "log", "args": {"positional": ["disk"], "named": {}}})
    assert resp.status_code == 200 and resp.get_json() == {}
    assert svc.executed == [("out", "log", ["disk"])]
    assert client.post("/v1/data-sources/out?action=request-refresh").get_json() == {}
    assert svc.refreshed == ["out"]
    assert "positional" in error_of(client.post(
        "/v1/data-sources/out?action=execute",
        json={"name": "log", "args": {"named": {"a": 1}}}), 400)
    error_of(client.post("/v1/data-sources/out?action=execute", json={"args": {}}), 400)
    error_of(client.post("/v1/data-sources/out?action=explode"), 400)
    error_of(client.post("/v1/data-sources/zz?action=request-refresh"), 404)


# -- drivers --------------------------------------------------------------------------

def test_drivers(client):
    listed = client.get("/v1/system/drivers").get_json()["results"]
    assert {d["id"] for d in listed} == {"file", "push"}
    assert all(set(d) == {"id", "description"} for d in listed)
    one = client.get("/v1/system/drivers/file").get_json()
    assert one["id"] == "file" and one["tables"][0]["table_id"] == "rows"
    assert "action_log" in one["config"]
    error_of(client.get("/v1/system/drivers/warp"), 404)


# -- errors from the service and from Flask -----------------------------------------

def test_service_unavailable_is_503(client, svc):
    svc.fail_next(Unavailable("the datasource process did not answer within 5 s"))
    assert "did not answer" in error_of(client.get("/v1/data-sources"), 503)


def test_conflict_is_409(client, svc):
    svc.fail_next(Conflict("the policies kept changing under this request; try again"))
    assert "try again" in error_of(client.post("/v1/policies", json={"name": "x"}), 409)


def test_a_bug_is_a_json_500_without_the_traceback(client, svc, caplog):
    svc.fail_next(RuntimeError("secret internals"))
    msg = error_of(client.get("/v1/policies"), 500)
    assert "secret" not in msg and "RuntimeError" in msg
    assert "secret internals" in caplog.text


def test_unknown_path_is_404_json(client):
    error_of(client.get("/v1/nothing/here"), 404)


def test_wrong_method_is_405_json(client):
    assert "PATCH" in error_of(client.patch("/v1/policies"), 405)


# -- auth -----------------------------------------------------------------------------

@pytest.fixture
def token_client(svc, tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    c = create_app(svc, settings("token", str(path))).test_client()
    c.token_path = path
    return c


def test_token_is_required(token_client):
    assert "X-Auth-Token" in error_of(token_client.get("/v1/policies"), 401)
    error_of(token_client.get("/v1/policies", headers={"X-Auth-Token": "wrong"}), 401)
    error_of(token_client.get("/v1/nothing", headers={"X-Auth-Token": "wrong"}), 401)
    ok = token_client.get("/v1/policies", headers={"X-Auth-Token": "s3cret"})
    assert ok.status_code == 200


def test_root_and_healthz_need_no_token(token_client):
    assert token_client.get("/").status_code == 200
    assert token_client.get("/healthz").status_code == 200
    assert token_client.get("/readyz").status_code == 200


def test_readyz_says_503_while_the_pe_is_not_ready_and_no_reason(svc, client):
    assert client.get("/readyz").get_json() == {"ready": True}
    svc.is_ready = False
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.get_json() == {"ready": False}
    assert resp.headers["Retry-After"] == "1"


def test_openapi_declares_the_token_when_required(token_client):
    doc = token_client.get("/v1/openapi.json", headers={"X-Auth-Token": "s3cret"}).get_json()
    assert doc["components"]["securitySchemes"]["token"]["name"] == "X-Auth-Token"


def test_a_rewritten_token_file_takes_effect(token_client):
    token_client.token_path.write_text("n3w-token-longer\n")
    assert token_client.get("/v1/policies", headers={"X-Auth-Token": "s3cret"}) \
        .status_code == 401
    assert token_client.get("/v1/policies", headers={"X-Auth-Token": "n3w-token-longer"}) \
        .status_code == 200


def test_a_token_file_emptied_while_running_keeps_the_last_token_and_never_500s(
        token_client):
    token_client.token_path.write_text("")
    assert token_client.get("/v1/policies", headers={"X-Auth-Token": "s3cret"}) \
        .status_code == 200
    assert token_client.get("/v1/policies").status_code == 401


def test_unusable_token_file_stops_the_app(svc, tmp_path):
    with pytest.raises(ValueError, match="cannot be read"):
        create_app(svc, settings("token", str(tmp_path / "missing")))
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        create_app(svc, settings("token", str(empty)))


def test_every_json_answer_is_parseable(client):
    make_policy(client)
    for path in ("/", "/v1/policies", "/v1/policies/p", "/v1/system/drivers"):
        json.loads(client.get(path).get_data(as_text=True))


def test_an_unwrapped_engine_error_is_still_a_400(client, svc):
    from congress_ha.engine import PolicyError

    svc.fail_next(PolicyError("invalid policy name 'a-b'"))
    assert "invalid policy name" in error_of(client.post("/v1/policies", json={"name": "x"}),
                                             400)
