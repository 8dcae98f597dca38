"""python-congressclient 2.0.1 against a real server: every v1 client method works.

The client talks through keystoneauth1 with ``noauth.NoAuth()`` and
``endpoint_override``, exactly as an operator's tooling would without Keystone.
The last test checks that every public method of the client was called.
"""

from __future__ import annotations

import inspect
import json

import pytest
from congressclient.v1.client import Client
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import noauth, session, token_endpoint

from tests.support.http import request
from tests.support.procs import Cluster, wait_for

CALLED: set[str] = set()


class Recording:
    """The client, noting which of its methods the tests call."""

    def __init__(self, client: Client):
        self._client = client

    def __getattr__(self, name):
        CALLED.add(name)
        return getattr(self._client, name)


@pytest.fixture(scope="module")
def cc(solo) -> Recording:
    sess = session.Session(auth=noauth.NoAuth())
    return Recording(Client(session=sess, endpoint_override=f"http://127.0.0.1:{solo.api_port}",
                            service_type="policy", interface="public"))


def _eventually(fn, what: str, timeout: float = 10.0):
    """Retry ``fn`` until it stops raising (the DSD starts datasources asynchronously)."""
    last: list[Exception] = []

    def attempt():
        try:
            return fn() or True
        except ks_exc.HttpError as exc:
            last[:] = [exc]
            return False

    try:
        return wait_for(attempt, timeout, what, interval=0.05)
    except AssertionError:
        raise AssertionError(f"{what}: last error {last}") from None


def test_api_versions(cc):
    versions = cc.list_api_versions()["versions"]
    assert [v["id"] for v in versions] == ["v1"]


def test_drivers(cc):
    ids = {d["id"] for d in cc.list_drivers()["results"]}
    assert {"push", "file", "ticker"} <= ids
    push = cc.show_driver("push")
    assert push["id"] == "push" and "tables" in push["config"]
    with pytest.raises(ks_exc.NotFound):
        cc.show_driver("warp-drive")


def test_policy_and_rules(cc):
    created = cc.create_policy({"name": "web", "description": "web tier",
                                "abbreviation": "web", "kind": "nonrecursive"})
    assert created["name"] == "web" and created["id"]
    assert cc.show_policy("web")["id"] == created["id"]
    assert cc.show_policy(created["id"])["name"] == "web"
    assert "web" in {p["name"] for p in cc.list_policy()["results"]}
    rule = cc.create_policy_rule("web", {"rule": "p(x) :- q(x)", "name": "r1",
                                         "comment": "first"})
    assert rule["rule"] == "p(x) :- q(x)" and rule["name"] == "r1"
    cc.create_policy_rule("web", {"rule": "q(1)"})
    cc.create_policy_rule("web", {"rule": 'q("two")'})
    assert cc.show_policy_rule("web", rule["id"]) == rule
    assert rule in cc.list_policy_rules("web")["results"]
    tables = {t["id"] for t in cc.list_policy_tables("web")["results"]}
    assert {"p", "q"} <= tables
    assert cc.show_policy_table("web", "p") == {"id": "p"}
    rows = cc.list_policy_rows("web", "p")["results"]
    assert sorted(json.dumps(r["data"]) for r in rows) == ['["two"]', "[1]"]
    traced = cc.list_policy_rows("web", "p", trace=True)
    assert len(traced["results"]) == 2 and "q(1)" in traced["trace"]
    assert cc.delete_policy_rule("web", rule["id"])["id"] == rule["id"]
    assert rule["id"] not in {r["id"] for r in cc.list_policy_rules("web")["results"]}


def test_rejected_rule_is_a_400_with_the_engines_message(cc):
    cc.create_policy({"name": "strict"})
    with pytest.raises(ks_exc.BadRequest) as err:
        cc.create_policy_rule("strict", {"rule": "p(x) :- q(y)"})
    assert "p(x) :- q(y)" in err.value.response.json()["error"]["message"]
    with pytest.raises(ks_exc.Conflict):
        cc.create_policy({"name": "strict"})


def test_simulate(cc):
    cc.create_policy({"name": "sim"})
    cc.create_policy_rule("sim", {"rule": "p(x) :- s(x)"})
    cc.create_policy_rule("sim", {"rule": "s(1)"})
    body = {"query": "p(x)", "sequence": "s+(2)", "action_policy": "action"}
    result = cc.execute_policy_action("sim", "simulate", False, False, body)
    assert sorted(result["result"]) == ["p(1)", "p(2)"]
    delta = cc.execute_policy_action("sim", "simulate", True, True, body)
    assert delta["result"] == ["p+(2)"] and "trace" in delta
    assert [r["data"] for r in cc.list_policy_rows("sim", "p")["results"]] == [[1]]


def test_library_policies(cc):
    lib = cc.create_library_policy({"name": "lib1", "description": "from the library",
                                    "kind": "nonrecursive",
                                    "rules": [{"rule": "lp(x) :- lq(x)", "name": "lr",
                                               "comment": ""}]})
    assert lib["name"] == "lib1" and lib["rules"][0]["rule"] == "lp(x) :- lq(x)"
    assert cc.show_library_policy(lib["id"])["rules"] == lib["rules"]
    assert "rules" not in cc.show_library_policy(lib["id"], include_rules=False)
    listed = cc.list_library_policy()["results"]
    assert [x["rules"] for x in listed if x["id"] == lib["id"]] == [lib["rules"]]
    assert all("rules" not in x for x in cc.list_library_policy(include_rules=False)
               ["results"])
    made = cc.create_policy(None, library_policy_id=lib["id"])
    assert made["name"] == "lib1" and [r["rule"] for r in made["rules"]] == ["lp(x) :- lq(x)"]
    assert [r["rule"] for r in cc.list_policy_rules("lib1")["results"]] == ["lp(x) :- lq(x)"]
    cc.delete_policy("lib1")
    with pytest.raises(ks_exc.NotFound):
        cc.show_policy("lib1")
    cc.delete_library_policy(lib["id"])
    with pytest.raises(ks_exc.NotFound):
        cc.show_library_policy(lib["id"])


def test_push_datasource_rows_schema_status(cc):
    ds = cc.create_datasource({"name": "alarms", "driver": "push", "description": "pushed",
                               "config": {"tables": {"alarm": ["id", "level"]}}})
    assert ds["name"] == "alarms" and ds["driver"] == "push"
    assert cc.show_datasource("alarms")["id"] == ds["id"]
    assert ds["id"] in {d["id"] for d in cc.list_datasources()["results"]}
    assert cc.list_datasource_tables("alarms")["results"] == [{"id": "alarm"}]
    assert cc.show_datasource_table("alarms", "alarm") == {"id": "alarm"}
    spec = cc.show_datasource_table_schema("alarms", "alarm")
    assert [c["name"] for c in spec["columns"]] == ["id", "level"]
    assert cc.show_datasource_schema("alarms")["tables"] == [spec]
    assert cc.list_datasource_actions("alarms")["results"] == []
    _eventually(lambda: cc.update_datasource_rows(
        "alarms", "alarm", body=[["disk", 3], {"id": "cpu", "level": 1}]), "push rows")
    wait_for(lambda: len(cc.list_datasource_rows("alarms", "alarm")["results"]) == 2, 10,
             "pushed rows in the replica")
    rows = sorted(r["data"] for r in cc.list_datasource_rows("alarms", "alarm")["results"])
    assert rows == [["cpu", 1], ["disk", 3]]
    assert isinstance(cc.list_datasource_status("alarms"), dict)
    cc.request_refresh("alarms")
    with pytest.raises(ks_exc.BadRequest):
        cc.update_datasource_rows("alarms", "alarm", body=[["only-one-value"]])
    # a policy over the pushed table sees the rows
    cc.create_policy({"name": "watch"})
    cc.create_policy_rule("watch", {"rule": "hot(x) :- alarms:alarm(x, l), gt(l, 2)"})
    wait_for(lambda: cc.list_policy_rows("watch", "hot")["results"] == [{"data": ["disk"]}],
             10, "the policy to see the pushed rows")


def test_execute_datasource_action(cc, solo):
    # In the server's base folder: its [drivers] file_allowed_dirs (tests/support/procs.py).
    log = solo.conf.parent.parent / "executed.jsonl"
    cc.create_datasource({"name": "out", "driver": "file",
                          "config": {"action_log": str(log)}})
    _eventually(lambda: cc.execute_datasource_action(
        "out", "execute", {"name": "log", "args": {"positional": ["disk", 3]}}),
        "execute on the file datasource")
    wait_for(lambda: log.exists() and log.read_text().strip(), 10, "the action log line")
    line = json.loads(log.read_text().splitlines()[0])
    assert line["action"] == "log" and line["args"] == ["disk", 3]
    cc.delete_datasource("out")
    with pytest.raises(ks_exc.NotFound):
        cc.show_datasource("out")


def test_token_auth_with_the_real_client(tmp_path):
    token = tmp_path / "api-token"
    token.write_text("t0ken-for-tests\n")
    cluster = Cluster(tmp_path, "fake://")
    proc = cluster.add("guarded", ["--all"])
    proc.conf.write_text(proc.conf.read_text().replace(
        "[api]\n", f"[api]\nauth_strategy = token\ntoken_file = {token}\n", 1))
    proc.start()
    try:
        url = f"http://127.0.0.1:{proc.api_port}"
        wait_for(lambda: _healthz(proc.api_port) or not proc.running(), 30, "the API")
        assert proc.running(), proc.logtext()[-2000:]
        good = Client(session=session.Session(auth=token_endpoint.Token(url, "t0ken-for-tests")),
                      endpoint_override=url, service_type="policy")
        assert {p["name"] for p in good.list_policy()["results"]} >= {"classification"}
        anonymous = Client(session=session.Session(auth=noauth.NoAuth()),
                           endpoint_override=url, service_type="policy")
        with pytest.raises(ks_exc.Unauthorized):
            anonymous.list_policy()
        assert anonymous.list_api_versions()["versions"][0]["id"] == "v1"
    finally:
        cluster.stop_all()


def _healthz(port: int) -> bool:
    try:
        return request(port, "GET", "/healthz", timeout=1.0)[0] == 200
    except OSError:
        return False


def test_every_client_method_was_exercised():
    methods = {name for name, fn in inspect.getmembers(Client, inspect.isfunction)
               if not name.startswith("_")}
    assert methods - CALLED == set()
