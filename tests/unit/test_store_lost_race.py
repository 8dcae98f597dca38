"""A transaction that loses a race (Galera's failed certification at COMMIT, a
deadlock) is told apart from an outage and answered as the revision guard's loser.

Galera is imitated on SQLite: a ``before_commit`` hook lets the other node's
conflicting write land and then fails this COMMIT with MySQL's error 1213, as
Galera does when the other write set was certified first.
"""

from __future__ import annotations

import threading

import pymysql
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from congress_ha.engine import Engine
from congress_ha.errors import InvalidInput
from congress_ha.roles.policies import PolicyManager
from congress_ha.store.datasources import add_datasource, pushed_rows, save_pushed_rows
from congress_ha.store.db import StoreError, open_engine, session_factory
from congress_ha.store.errors import lost_race
from congress_ha.store.journal import LOST_RACE_TRIES, Journal
from congress_ha.store.policies import PolicyStore, RevisionConflict

DEADLOCK = (1213, "Deadlock found when trying to get lock; try restarting transaction")


def certification_failure() -> OperationalError:
    return OperationalError("COMMIT", {}, pymysql.err.OperationalError(*DEADLOCK))


def fail_commits(sessions, times: int, before=None) -> dict:
    """The next ``times`` commits of ``sessions`` fail certification; ``before()``
    (the winner's write, on another connection) lands first each time.

    SQLite has one writer at a time, so the winner writes just after this
    transaction's rollback, before the error reaches the caller: what the caller
    sees is Galera's order (the winner certified, then this COMMIT refused).
    """
    state = {"left": times, "failed": 0, "pending": False}

    @event.listens_for(sessions, "before_commit")
    def _fail(session):
        if state["left"] > 0:
            state["left"] -= 1
            state["failed"] += 1
            state["pending"] = before is not None
            raise certification_failure()

    @event.listens_for(sessions, "after_rollback")
    def _winner(session):
        if state["pending"]:
            state["pending"] = False
            before()

    return state


def test_mysql_deadlock_and_postgres_serialization_failures_are_lost_races():
    assert lost_race(certification_failure())
    away = OperationalError("SELECT 1", {}, pymysql.err.OperationalError(
        2003, "Can't connect to MySQL server on '127.0.0.1'"))
    assert not lost_race(away)

    class PgError(Exception):
        sqlstate = "40001"

    assert lost_race(OperationalError("COMMIT", {}, PgError()))
    assert not lost_race(ValueError("no orig"))


def test_a_policy_write_that_fails_certification_is_a_revision_conflict(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = PolicyStore(session_factory(open_engine(url)))
    rev = store.revision()
    fail_commits(store.sessions, 1)
    with pytest.raises(RevisionConflict):
        store.create_policy(rev, "a", "", "", "nonrecursive")
    state = store.load()
    assert state.revision == rev and "a" not in state.policies  # nothing kept


def test_the_loser_of_a_certification_race_is_validated_again_and_refused(tmp_path):
    """Two API nodes add rules that are fine alone and recursive together: the one
    whose COMMIT fails certification gets the same 400 as the guard's loser."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    nodes = []
    for name in ("pe1", "pe2"):
        store = PolicyStore(session_factory(open_engine(url)))
        pm = PolicyManager(Engine(), store, threading.RLock(), lambda actions: None, name)
        pm.ensure_defaults()
        nodes.append(pm)
    pe1, pe2 = nodes
    pe1.create_policy("p")
    pe2.sync()

    def winner():  # pe1's write, certified first, on its own connection
        pe1.store.add_rule(pe1.store.revision(), pe1.get_policy("p").id, "r-win",
                           "q(x) :- r(x), s(x)", "", "")

    failed = fail_commits(pe2.store.sessions, 1, before=winner)
    with pytest.raises(InvalidInput, match="(?i)recurs"):
        pe2.add_rule("p", "r(x) :- q(x), s(x)")
    assert failed["failed"] == 1
    pe1.sync()
    pe2.sync()
    assert [r.rule for r in pe1.get_policy("p").rules] == ["q(x) :- r(x), s(x)"]
    assert [r.rule for r in pe2.get_policy("p").rules] == ["q(x) :- r(x), s(x)"]


def test_a_rule_whose_write_fails_certification_against_an_unrelated_write_is_stored(
        tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    pm = PolicyManager(Engine(), PolicyStore(session_factory(open_engine(url))),
                       threading.RLock(), lambda actions: None, "pe1")
    pm.ensure_defaults()
    pm.create_policy("p")
    other = PolicyStore(session_factory(open_engine(url)))
    fail_commits(pm.store.sessions, 1, before=lambda: other.create_policy(
        other.revision(), "elsewhere", "", "", "nonrecursive"))
    rule = pm.add_rule("p", "a(x) :- b(x)")
    assert [r.id for r in pm.get_policy("p").rules] == [rule.id]
    assert "elsewhere" in {p.name for p in pm.list_policies()}


def journal_at(tmp_path) -> tuple[Journal, Journal]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    return (Journal(session_factory(open_engine(url))),
            Journal(session_factory(open_engine(url))))


def test_the_journal_insert_that_loses_certification_sees_the_winner_and_skips(tmp_path):
    """Two DSDs record one action through two Galera nodes: the loser's COMMIT
    fails, its retry finds the winner's row, and it must not run the action."""
    mine, theirs = journal_at(tmp_path)
    won = []
    fail_commits(mine.sessions, 1, before=lambda: won.append(
        theirs.record("a-1", "out", "log", [1], "pe1", "dsd-old", "leader")))
    assert mine.record("a-1", "out", "log", [1], "pe1", "dsd-new", "leader") is False
    assert won == [True] and mine.count() == 1


def test_the_journal_insert_that_loses_to_another_row_is_made_again(tmp_path):
    mine, theirs = journal_at(tmp_path)
    fail_commits(mine.sessions, 2, before=lambda: theirs.record(
        f"b-{theirs.count()}", "out", "log", [2], "pe1", "dsd", "leader"))
    assert mine.record("a-1", "out", "log", [1], "pe1", "dsd", "leader") is True
    assert set(mine.recent_ids()) == {"a-1", "b-0", "b-1"}


def test_a_journal_insert_that_keeps_losing_is_a_store_error_to_retry_later(tmp_path):
    mine, _ = journal_at(tmp_path)
    fail_commits(mine.sessions, LOST_RACE_TRIES)
    with pytest.raises(StoreError, match="journal write failed"):
        mine.record("a-1", "out", "log", [1], "pe1", "dsd", "leader")
    assert mine.count() == 0


def test_a_push_that_loses_certification_is_stored_after_the_winner(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    sessions = session_factory(open_engine(url))
    ds = add_datasource(sessions, "inbox", "push", {"tables": {"alarm": ["n"]}})
    other = session_factory(open_engine(url))
    fail_commits(sessions, 1, before=lambda: save_pushed_rows(
        other, "inbox", "alarm", [["theirs"]], datasource_id=ds.id))
    version = save_pushed_rows(sessions, "inbox", "alarm", [["mine"]], datasource_id=ds.id)
    assert pushed_rows(sessions, "inbox") == {"alarm": ([["mine"]], version)}
    assert version == 2
