"""The API's policy actions: Congress's names, a default rule for every route,
reads open to readers and writes to admins (oslo.policy decides)."""

from __future__ import annotations

from oslo_config import cfg
from oslo_policy import policy

from congress_ha.api import auth, routes


def enforcer() -> policy.Enforcer:
    conf = cfg.ConfigOpts()
    conf(args=[])
    e = policy.Enforcer(conf)
    e.register_defaults(auth.rule_defaults())
    return e


def test_every_route_that_needs_auth_has_an_action_with_a_default():
    acts = auth.actions()
    for route in routes.ROUTES:
        if route.auth:
            for name in [a.name for a in route.actions] or [None]:
                assert auth.action_name(route, name) in acts
    assert {"get_policies", "create_policies", "delete_policies", "create_rules",
            "get_rows", "update_rows", "simulate_policies", "execute_data-sources",
            "request-refresh_data-sources"} <= set(acts)


def test_readers_read_and_simulate_admins_do_everything():
    e = enforcer()
    target = {"project_id": "p"}
    for roles, allowed in ((["reader"], False), (["member"], False), (["admin"], True)):
        creds = {"roles": roles, "project_id": "p"}
        for act, check in auth.actions().items():
            reading = act.split("_", 1)[0] in auth.READS
            assert e.enforce(act, target, creds) == (allowed or reading), (roles, act, check)
    assert not e.enforce("get_policies", target, {"roles": ["nobody"], "project_id": "p"})
