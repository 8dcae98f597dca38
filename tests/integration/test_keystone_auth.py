"""auth_strategy = keystone: real keystonemiddleware in a real server, against a
local Keystone token validator over HTTP (tests/support/keystone.py), and
oslo.policy with the defaults (readers read, admins write) and a policy file."""

from __future__ import annotations

import json

import pytest

from tests.support.http import request
from tests.support.keystone import SERVICE_TOKEN, FakeKeystone
from tests.support.procs import Cluster, wait_for


@pytest.fixture(scope="module")
def keystone():
    with FakeKeystone() as ks:
        yield ks


def start(base, keystone, policy_file=None):
    c = Cluster(base, "fake://")
    proc = c.add("solo", ["--all"])
    conf = proc.conf.read_text().replace(
        "[api]\n", "[api]\nauth_strategy = keystone\n", 1)
    conf += (f"\n[keystone_authtoken]\nwww_authenticate_uri = {keystone.url}/v3\n"
             f"auth_type = admin_token\nendpoint = {keystone.url}/v3\n"
             f"token = {SERVICE_TOKEN}\ntoken_cache_time = -1\n")
    if policy_file is not None:
        conf += f"\n[oslo_policy]\npolicy_file = {policy_file}\n"
    proc.conf.write_text(conf)
    proc.start()
    wait_for(lambda: proc.healthy("api-pe", 10), 60, "the node healthy")
    return c, proc


def api(proc, method, path, body=None, token=None, headers=None):
    hdrs = dict(headers or {})
    if token:
        hdrs["X-Auth-Token"] = token
    return request(proc.api_port, method, path, body, headers=hdrs, timeout=30)


@pytest.fixture(scope="module")
def node(keystone, tmp_path_factory):
    c, proc = start(tmp_path_factory.mktemp("chit-keystone"), keystone)
    yield proc
    c.stop_all()


def test_without_a_valid_token_nothing_but_root_and_healthz_answers(node, keystone):
    assert api(node, "GET", "/")[0] == 200
    assert api(node, "GET", "/healthz")[0] == 200
    for token in (None, "tok-forged"):
        for method, path in (("GET", "/v1/policies"), ("POST", "/v1/policies"),
                             ("GET", "/v1/no-such-route")):
            status, body = api(node, method, path, {"name": "x"}, token=token)
            assert status == 401, (method, path, token, body)
            assert "Keystone token" in body["error"]["message"]


def test_headers_a_client_forges_are_not_trusted(node):
    status, _ = api(node, "POST", "/v1/policies", {"name": "forged"}, headers={
        "X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-User-Id": "u"})
    assert status == 401


def test_readers_read_admins_write_as_the_default_rules_say(node, keystone):
    reader, member, admin = (keystone.issue([r]) for r in ("reader", "member", "admin"))
    before = keystone.validations
    assert api(node, "GET", "/v1/policies", token=reader)[0] == 200
    assert api(node, "GET", "/v1/policies", token=member)[0] == 200
    assert keystone.validations > before  # the middleware asked Keystone
    status, body = api(node, "POST", "/v1/policies", {"name": "byreader"}, token=reader)
    assert status == 403 and "create_policies" in body["error"]["message"], body
    assert api(node, "POST", "/v1/policies", {"name": "byadmin"}, token=admin)[0] == 201
    status, body = api(node, "POST", "/v1/policies/byadmin/rules", {"rule": "p(1)"},
                       token=member)
    assert status == 403 and "create_rules" in body["error"]["message"], body
    assert api(node, "POST", "/v1/policies/byadmin/rules", {"rule": "p(1)"},
               token=admin)[0] == 201
    # simulate is a read; reader may run it
    status, body = api(node, "POST", "/v1/policies/byadmin?action=simulate",
                       {"query": "p(x)", "sequence": "p+(2)"}, token=reader)
    assert status == 200, body
    assert api(node, "DELETE", "/v1/policies/byadmin", token=reader)[0] == 403
    assert api(node, "DELETE", "/v1/policies/byadmin", token=admin)[0] == 200


def test_a_revoked_token_is_refused_at_once_without_a_cache(node, keystone):
    admin = keystone.issue(["admin"])
    assert api(node, "GET", "/v1/policies", token=admin)[0] == 200
    keystone.revoke(admin)
    assert api(node, "GET", "/v1/policies", token=admin)[0] == 401


def test_a_policy_file_overrides_the_defaults(keystone, tmp_path):
    rules = tmp_path / "policy.yaml"
    rules.write_text(json.dumps({"get_policies": "role:admin",
                                 "create_policies": "role:member"}))
    c, proc = start(tmp_path, keystone, policy_file=rules)
    try:
        reader, member = keystone.issue(["reader"]), keystone.issue(["member"])
        assert api(proc, "GET", "/v1/policies", token=reader)[0] == 403
        assert api(proc, "POST", "/v1/policies", {"name": "m"}, token=member)[0] == 201
    finally:
        c.stop_all()


def test_python_congressclient_works_with_a_keystone_token(node, keystone):
    from congressclient.v1.client import Client
    from keystoneauth1 import session, token_endpoint

    auth = token_endpoint.Token(f"http://127.0.0.1:{node.api_port}", keystone.issue(["admin"]))
    cc = Client(session=session.Session(auth=auth), service_type="policy")
    cc.create_policy({"name": "viaclient"})
    assert "viaclient" in [p["name"] for p in cc.list_policy()["results"]]
