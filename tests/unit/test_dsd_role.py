"""The DSD role put together from its parts (roles/datasources.py, roles/dsd/), on a
SQLite store, with the bus replaced by a recorder: drivers run by what they declare,
pushed rows persist, actions run once, the clock datasource always runs."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from congress_ha.bus import contract as c
from congress_ha.bus.peers import PeerTable
from congress_ha.datasources.base import Driver, DriverError
from congress_ha.datasources.registry import DRIVERS
from congress_ha.roles.datasources import DatasourceRole
from congress_ha.roles.dsd.publish import Publication
from congress_ha.store.datasources import (
    NoSuchDatasource,
    add_datasource,
    delete_datasource,
    list_datasources,
    pushed_rows,
    save_pushed_rows,
)
from congress_ha.store.db import open_engine, session_factory
from tests.support.sealed import Caller, local_sealer

SETTINGS = SimpleNamespace(
    ha=SimpleNamespace(peer_timeout=1.0, shadow_log_size=100, shadow_log_age=60.0,
                       shadow_grace=2.0, action_journal=True),
    engine=SimpleNamespace(now_resolution=1.0))


class Bus:
    """Stands for the Transport: records what the DSD sends, keeps what it serves."""

    def __init__(self):
        self.sent: list[tuple[str, str, dict]] = []
        self.endpoints: dict[str, c.Endpoint] = {}

    def serve(self, topic, server, endpoint):
        self.endpoints[topic] = endpoint
        return topic

    def unserve(self, srv):
        self.endpoints.pop(srv, None)

    sealer = local_sealer()

    def broadcast(self, topic, method, args, seal, retry=None):
        self.sent.append((topic, method, args))

    def deltas(self, datasource):
        return [kw["delta"] for topic, _, kw in self.sent
                if topic == c.TOPIC_TABLES and kw["delta"]["datasource"] == datasource]


class Node:
    member, incarnation = "n1:datasources", "inc1"

    def __init__(self):
        self.peers = PeerTable(1.0)
        self.listeners = []

    def add_listener(self, listener, queued=False):
        self.listeners.append(listener)


class Tagged(Driver):
    """Not the push driver, not named push: it says it takes pushed rows, and so it does."""

    tables = {"t": ["x"]}
    accepts_push = True

    def normalize(self, table, rows):
        return [tuple(r) for r in rows]


def wait_for(check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setitem(DRIVERS, "tagged", Tagged)
    sessions = session_factory(open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    add_datasource(sessions, "inbox", "push", {"tables": {"alarm": ["host", "kind"]}})
    add_datasource(sessions, "out", "file", {"action_log": str(tmp_path / "actions.jsonl")})
    add_datasource(sessions, "tags", "tagged", {})
    return sessions


@pytest.fixture
def role(store, tmp_path):
    # The file datasource's action log is in tmp_path: the folder it may use.
    settings = SimpleNamespace(**vars(SETTINGS),
                               drivers=SimpleNamespace(file_allowed_dirs=(str(tmp_path),)))
    r = DatasourceRole(settings, Node(), Bus(), store)
    r.prepare()
    r.start()
    yield r
    r.stop()


def dsd(role) -> Caller:
    """The DSD's endpoint, each call delivered sealed by a peer."""
    return Caller(role.transport.endpoints[c.TOPIC_DSD])


def test_every_datasource_and_the_clock_are_announced(role):
    assert sorted(role.heartbeat_state()["seqs"]) == ["builtin", "inbox", "out", "tags"]
    assert role.ready() == (True, "4 datasources running")
    assert role.transport.deltas("builtin"), "the clock that now(x) reads publishes"


def test_rows_go_to_what_accepts_pushes_and_persist_only_where_declared(role, store):
    endpoint = dsd(role)
    assert endpoint.push_rows({}, datasource="inbox", table="alarm",
                              rows=[["web1", "disk"], {"host": "db1", "kind": "cpu"}]) \
        == {"ok": True, "rows": 2}
    rows, version = pushed_rows(store, "inbox")["alarm"]
    assert sorted(rows) == [["db1", "cpu"], ["web1", "disk"]] and version == 1
    assert role.transport.deltas("inbox")[-1]["added"] == [["db1", "cpu"], ["web1", "disk"]]
    assert endpoint.push_rows({}, datasource="tags", table="t", rows=[[1]]) == {
        "ok": True, "rows": 1}
    assert pushed_rows(store, "tags") == {}
    answer = endpoint.push_rows({}, datasource="out", table="t", rows=[[1]])
    assert answer["kind"] == "invalid" and "does not accept pushed rows" in answer["error"]
    answer = endpoint.push_rows({}, datasource="inbox", table="alarm", rows=[["web1"]])
    assert answer["kind"] == "invalid" and "row 0" in answer["error"]


def test_a_push_stored_by_an_api_node_is_published_at_its_word_or_by_the_poll(role, store):
    endpoint = dsd(role)
    # An API node stores the rows (the DSD is not asked), then tells the DSD.
    assert save_pushed_rows(store, "inbox", "alarm", [["web1", "disk"]]) == 1
    assert endpoint.push_stored({}, datasource="inbox", table="alarm") == {"ok": True,
                                                                          "rows": 1}
    assert role.transport.deltas("inbox")[-1]["added"] == [["web1", "disk"]]
    sent = len(role.transport.sent)
    assert role.drivers.sync_pushed() == 0          # nothing newer stored: nothing sent
    assert len(role.transport.sent) == sent
    # Stored while the DSD or the bus was away: no word comes, the poll publishes it.
    assert save_pushed_rows(store, "inbox", "alarm", [["db1", "cpu"]]) == 2
    assert role.drivers.sync_pushed() == 1
    delta = role.transport.deltas("inbox")[-1]
    assert (delta["added"], delta["removed"]) == ([["db1", "cpu"]], [["web1", "disk"]])
    answer = endpoint.push_stored({}, datasource="out", table="t")
    assert answer["kind"] == "invalid" and "does not accept pushed rows" in answer["error"]


def test_a_push_racing_the_datasource_s_delete_stores_nothing(store):
    ds = next(d for d in list_datasources(store) if d.name == "inbox")
    delete_datasource(store, ds.id)
    with pytest.raises(NoSuchDatasource):
        save_pushed_rows(store, "inbox", "alarm", [["web1", "disk"]], datasource_id=ds.id)
    assert pushed_rows(store, "inbox") == {}


def test_pushed_rows_come_back_in_a_restarted_dsd(store):
    first = DatasourceRole(SETTINGS, Node(), Bus(), store)
    first.start()
    dsd(first).push_rows({}, datasource="inbox", table="alarm", rows=[["web1", "disk"]])
    first.stop()
    second = DatasourceRole(SETTINGS, Node(), Bus(), store)
    second.start()
    try:
        snap = dsd(second).snapshot({}, datasource="inbox")
        assert snap["tables"]["alarm"] == [["web1", "disk"]]
        assert snap["schema"] == {"alarm": ["host", "kind"]}
    finally:
        second.stop()


def test_an_action_request_runs_once_through_the_leader_and_the_journal(role, tmp_path):
    request = {"action_id": "a1", "pe": "pe1:api-pe", "incarnation": "i1",
               "datasource": "out", "action": "log", "args": ["disk"]}
    endpoint = dsd(role)
    endpoint.execute_action({}, request=request)
    endpoint.execute_action({}, request=request)  # a copy: deduplicated
    log = tmp_path / "actions.jsonl"
    wait_for(lambda: log.exists() and log.read_text().count("\n") == 1)
    line = json.loads(log.read_text())
    assert (line["action_id"], line["action"], line["args"], line["leader"]) == (
        "a1", "log", ["disk"], "pe1:api-pe")
    view = endpoint.leader_status({})
    assert view["leader"] == "pe1:api-pe" and view["counters"]["duplicates"] == 1
    wait_for(lambda: endpoint.leader_status({})["executed_total"] == 1)


def test_calls_answer_in_the_contracts_shapes(role):
    endpoint = dsd(role)
    status = endpoint.datasource_status({}, datasource="inbox")
    assert status["initialized"] is True and status["dsd"] == "n1:datasources"
    assert endpoint.datasource_status({}, datasource="nope")["kind"] == "not_found"
    assert endpoint.execute_direct({}, datasource="inbox", action="log", args=[])[
        "kind"] == "invalid"   # push has no actions
    assert endpoint.execute_direct({}, datasource="out", action="log", args=["x"]) == {
        "ok": True}
    assert endpoint.refresh({}, datasource="out") == {"ok": True}
    assert endpoint.snapshot({}, datasource="nope") is None


def test_a_datasource_is_announced_only_once_its_driver_started():
    publication = Publication(Bus(), "inc1", 100)

    class Late(Driver):
        def start(self):
            self.tables = {"found": ["a"]}   # learnt by its first read
            self.publish("found", [(1,)])

    driver = Late("late", {}, publication.sink("late"))
    publication.attach("late", driver)
    assert publication.seqs() == {} and publication.snapshot("late") is None
    driver.start()
    assert publication.seqs() == {}
    publication.announce("late", driver)
    snap = publication.snapshot("late")
    assert (snap.seq, snap.schema, snap.tables) == (1, {"found": ["a"]}, {"found": [[1]]})


def test_a_row_limit_above_what_the_bus_carries_is_held_to_it():
    publication = Publication(Bus(), "inc1", 10**9)
    publication.max_rows = 2  # as if the bus carried 2 rows of a table
    with pytest.raises(DriverError, match="the most the bus carries"):
        publication.checked("ds", "t", [(1,), (2,), (3,)])


def test_the_metrics_view_shows_the_action_and_counts_the_journal_at_most_every_10s(
        store, tmp_path):
    from congress_ha.roles.dsd.actions import JOURNAL_COUNT_EVERY

    now = [100.0]
    settings = SimpleNamespace(**vars(SETTINGS),
                               drivers=SimpleNamespace(file_allowed_dirs=(str(tmp_path),)))
    r = DatasourceRole(settings, Node(), Bus(), store, clock=lambda: now[0])
    r.prepare()
    r.start()
    try:
        before = r.metrics_view()
        assert before.action_gap is None and before.journal_rows == 0
        assert before.leader_changes["first_ready_pe"] == 0 and not before.leader_present
        endpoint = dsd(r)
        for n in (1, 2):
            endpoint.execute_action({}, request={
                "action_id": f"m{n}", "pe": "pe1:api-pe", "incarnation": "i1",
                "datasource": "out", "action": "log", "args": [n]})
            wait_for(lambda n=n: r.actions.executed_total == n)
        now[0] += 0.5
        view = r.metrics_view()
        assert view.actions == {"executed": 2, "skipped_by_journal": 0, "failed": 0}
        assert view.leader_present and view.leader_changes["first_ready_pe"] == 1
        assert view.action_gap == 0.5 and view.shadow_log == 0
        assert view.journal_rows == 0, "counted at the first scrape, cached since"
        assert sorted(view.seqs) == ["builtin", "inbox", "out", "tags"]
        now[0] += JOURNAL_COUNT_EVERY
        assert r.metrics_view().journal_rows == 2
    finally:
        r.stop()
