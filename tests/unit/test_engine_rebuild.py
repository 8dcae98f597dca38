"""A PE never serves from an engine that failed: it rebuilds it from its replica and
the stored policies, keeping action ids, and sends nothing twice."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from congress_ha.bus.messages import Snapshot
from congress_ha.engine import Engine
from congress_ha.roles.policies import PolicyManager
from congress_ha.roles.policy_engine import PolicyEngineRole
from congress_ha.store.db import open_engine, session_factory
from congress_ha.store.policies import PolicyStore


def make(tmp_path):
    settings = SimpleNamespace(ha=SimpleNamespace(heartbeat_interval=0.25))
    node = SimpleNamespace(member="pe1:api-pe", incarnation="i1")
    lock = threading.RLock()
    engine = Engine()
    sent: list = []
    pe = PolicyEngineRole(settings, node, None, engine, lock)
    pe.send_actions = sent.extend
    store = PolicyStore(session_factory(open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")))
    pm = PolicyManager(engine, store, lock, sent.extend, node.member)
    pm.rebuild = pe.rebuild_engine
    pe.policies = pm
    pe.replica.on_snapshot(Snapshot("ds", "dsd1", 3, {"t": ["a"]}, {"t": [[1], [2]]}))
    engine.set_schema("ds", {"t": ["a"]})
    engine.replace_table("ds", "t", [(1,), (2,)])
    pm.ensure_defaults()
    return pe, pm, sent


def test_an_engine_that_raises_inside_a_change_is_rebuilt_and_answers_right(tmp_path):
    pe, pm, sent = make(tmp_path)
    pm.create_policy("p")
    pm.add_rule("p", "execute[out:log(x)] :- ds:t(x)")
    pm.add_rule("p", "seen(x) :- ds:t(x)")
    fired = sorted(a.action_id for a in sent)
    assert len(fired) == 2

    broken = pe.engine
    calls = {"n": 0}
    real = broken.insert_rule

    def fails_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the 1st is the trial before the write; then the sync's
            raise IndexError("tuple index out of range")  # a bug, mid-change
        return real(*args, **kwargs)

    broken.insert_rule = fails_once
    pm.add_rule("p", "both(x) :- ds:t(x), seen(x)")
    assert pe.rebuilds == 1 and pe.engine is not broken and pm.engine is pe.engine
    assert pm.rows("p", "both") == {(1,), (2,)}
    assert pm.rows("p", "seen") == {(1,), (2,)}
    assert sorted(a.action_id for a in sent) == fired   # nothing sent again

    # Later derivations carry on from the old engine's occurrence counts.
    pe.engine.apply_delta("ds", "t", [(3,)], [])
    pe.engine.apply_delta("ds", "t", [], [(1,)])
    again = pe.engine.apply_delta("ds", "t", [(1,)], [])
    assert [a.occurrence for a in again] == [2]


def test_a_rule_the_rebuilt_engine_refuses_is_quarantined_not_fatal(tmp_path):
    pe, pm, _ = make(tmp_path)
    pm.create_policy("p")
    pm.add_rule("p", "ok(x) :- ds:t(x)")
    record = pm.get_policy("p")
    # Behind the API's back: a rule no engine accepts, then a sync.
    pm.store.add_rule(pm.store.revision(), record.id, "bad", "p(x) :- q(", "", "")
    pm.sync()
    assert "bad" in pm.quarantined
    assert pm.rows("p", "ok") == {(1,), (2,)}
    pe.rebuild_engine("test")
    assert "bad" in pm.quarantined and pm.rows("p", "ok") == {(1,), (2,)}


def test_an_engine_that_fails_in_the_trial_stores_nothing_and_is_rebuilt(tmp_path):
    import pytest

    from congress_ha.errors import InvalidInput

    pe, pm, _ = make(tmp_path)
    pm.create_policy("p")
    broken = pe.engine

    def fails(*args, **kwargs):
        raise IndexError("tuple index out of range")

    broken.insert_rule = fails
    revision = pm.store.revision()
    with pytest.raises(InvalidInput, match="nothing was stored"):
        pm.add_rule("p", "seen(x) :- ds:t(x)")
    assert pm.store.revision() == revision and pe.rebuilds == 1
    assert pe.engine is not broken
    pm.add_rule("p", "seen(x) :- ds:t(x)")
    assert pm.rows("p", "seen") == {(1,), (2,)}
