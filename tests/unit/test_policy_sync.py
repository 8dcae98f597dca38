"""The policies a PE holds: read-your-writes (a write's own sync never returns
before readers see what it wrote, whatever a background sync is doing), and a
rule stored twice."""

from __future__ import annotations

import threading

import pytest

from congress_ha.engine import Engine
from congress_ha.errors import InvalidInput
from congress_ha.roles.policies import PolicyManager
from congress_ha.store.db import open_engine, session_factory
from congress_ha.store.policies import PolicyStore


def manager(tmp_path) -> PolicyManager:
    store = PolicyStore(session_factory(open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")))
    pm = PolicyManager(Engine(), store, threading.RLock(), lambda actions: None, "pe1")
    pm.ensure_defaults()
    return pm


def test_a_write_is_visible_when_it_returns_while_a_background_sync_publishes(tmp_path):
    """The race CI caught (1 in ~600 writes): the background sync had applied the
    new revision but not yet published it, and the writer's sync returned on the
    revision alone, so the write answered 404 for the rule it had just stored."""
    pm = manager(tmp_path)
    pm.create_policy("p")
    revision = pm.store.revision()
    rule_id = "r-1"
    # Another node's write, as the background sync will find it.
    pm.store.add_rule(revision, pm.get_policy("p").id, rule_id, "p(1)", "", "")

    applied, release = threading.Event(), threading.Event()
    real_publish = pm._publish

    def slow_publish():
        if threading.current_thread().name == "background-sync":
            applied.set()                 # revision moved, records not yet published
            assert release.wait(10)
        real_publish()

    pm._publish = slow_publish
    background = threading.Thread(target=pm.sync, name="background-sync")
    background.start()
    assert applied.wait(10)

    seen = {}

    def writer():
        pm.sync()   # what every write does after storing
        seen["rules"] = [r.id for r in pm.get_policy("p").rules]

    api = threading.Thread(target=writer)
    api.start()
    api.join(0.5)  # the writer must wait for the publish, not answer from before it
    assert "rules" not in seen
    release.set()
    background.join(10)
    api.join(10)
    assert seen["rules"] == [rule_id]


def test_load_returns_rows_of_the_revision_it_reports(tmp_path):
    """A write between the revision read and the rows read is read again."""
    pm = manager(tmp_path)
    store = pm.store
    real = store._load_once
    calls = {"n": 0}

    def racing():
        state, after = real()
        calls["n"] += 1
        if calls["n"] == 1:  # a write lands while the first read is in flight
            store.create_policy(store.revision(), "late", "", "", "nonrecursive")
            return state, after + 1
        return state, after

    store._load_once = racing
    state = store.load()
    assert calls["n"] == 2 and "late" in state.policies
    assert state.revision == store.revision()


def test_a_rule_stored_twice_is_quarantined_not_confused_with_the_first(tmp_path):
    """Writes refuse a duplicate (409), but a database can hold one (an earlier
    version stored it): the copy is quarantined, and deleting either never
    leaves the engine and the records apart."""
    pm = manager(tmp_path)
    pm.create_policy("p")
    pid = pm.get_policy("p").id
    for rule_id in ("r-1", "r-2"):
        pm.store.add_rule(pm.store.revision(), pid, rule_id, "q(1)", "", "")
    pm.sync()
    assert pm.rows("p", "q") == {(1,)}
    assert pm.quarantined["r-2"][2] == "it repeats rule r-1"
    pm.delete_rule("p", "r-2")
    assert pm.rows("p", "q") == {(1,)} and "r-2" not in pm.quarantined
    pm.delete_rule("p", "r-1")
    assert [r.id for r in pm.get_policy("p").rules] == []
    assert pm.engine.rules("p") == []


def test_create_policy_refuses_a_rule_list_that_repeats_a_rule(tmp_path):
    pm = manager(tmp_path)
    with pytest.raises(InvalidInput, match=r"rules\[1\] repeats rules\[0\]"):
        pm.create_policy("p", rules=[("q(1)", "", ""), ("q( 1 )", "", "")])
    assert "p" not in {r.name for r in pm.list_policies()}
