"""congress_ha.bus.contract: every method's messages round-trip; whatever does not fit
the contract is refused, logged and answered, and never raises into the dispatcher."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import pytest

from congress_ha.bus import contract as c
from congress_ha.bus import messages as m
from congress_ha.bus.seal import Sealer
from congress_ha.bus.transport import BusError
from congress_ha.bus.wire import MAX_ITEMS, MAX_ROWS, Refused, dump, parse
from tests.support.sealed import KEYS, PEER, ask, local_sealer

HB = m.Heartbeat("n1:datasources", "n1", "inc1", ["datasources"], True, 1764650000.25, 7,
                 {"in": 3, "builtin": 9}, "n2:api-pe", 2, "ready")
# One example of every message, as the old releases sent it (a wire-compatibility record).
SAMPLES: dict[type, object] = {
    m.Heartbeat: HB,
    m.Goodbye: m.Goodbye("n2:api-pe", "inc2"),
    m.PolicyChanged: m.PolicyChanged(12),
    m.DatasourcesChanged: m.DatasourcesChanged(),
    m.TableDelta: m.TableDelta("in", "inc1", 4, "alarm", [["web1", 1], ["db1", 2.5]],
                               [["old", 0]]),
    m.ActionRequest: m.ActionRequest("a1b2", "n2:api-pe", "inc2", "out", "log", ("disk", 3)),
    m.SnapshotRequest: m.SnapshotRequest("in"),
    m.Snapshot: m.Snapshot("in", "inc1", 4, {"alarm": ["host", "n"]},
                           {"alarm": [["web1", 1]]}),
    m.LeaderStatusRequest: m.LeaderStatusRequest(),
    m.LeaderStatus: m.LeaderStatus(
        "n1:datasources", "inc1", "n2:api-pe", "inc2", 12.5,
        {"leader_changes": 1, "executed": 3}, 3, 0, 0, 1,
        [m.LeaderChangeView(12.5, None, "n2:api-pe", "first ready PE heard")]),
    m.PushRows: m.PushRows("in", "alarm", [["web1", 1], {"host": "db1", "n": 2}]),
    m.PushStored: m.PushStored("in", "alarm"),
    m.Pushed: m.Pushed(True, 2),
    m.DatasourceStatusRequest: m.DatasourceStatusRequest("in"),
    m.DatasourceStatus: m.DatasourceStatus(True, 4, "2026-12-02 05:02:03", None, 4,
                                           "n1:datasources"),
    m.ExecuteDirect: m.ExecuteDirect("out", "log", ["disk"]),
    m.RefreshRequest: m.RefreshRequest("in"),
    m.Done: m.Done(),
}
# The wire form of the releases before the contract, written out: it must not change.
OLD_WIRE = {
    "heartbeat": {"hb": {"member": "n1:datasources", "node_id": "n1", "incarnation": "inc1",
                         "roles": ["datasources"], "ready": True, "started": 1764650000.25,
                         "beat": 7, "seqs": {"in": 3, "builtin": 9}, "leader": "n2:api-pe",
                         "leader_changes": 2, "reason": "ready"}},
    "goodbye": {"member": "n2:api-pe", "incarnation": "inc2"},
    "policy_changed": {"revision": 12},
    "datasources_changed": {},
    "execute_action": {"request": {"action_id": "a1b2", "pe": "n2:api-pe",
                                   "incarnation": "inc2", "datasource": "out",
                                   "action": "log", "args": ["disk", 3]}},
    "snapshot": {"datasource": "in"},
    "leader_status": {},
    "push_rows": {"datasource": "in", "table": "alarm",
                  "rows": [["web1", 1], {"host": "db1", "n": 2}]},
    "execute_direct": {"datasource": "out", "action": "log", "args": ["disk"]},
}


def json_trip(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("method", c.METHODS, ids=str)
def test_every_request_and_reply_round_trips_through_json(method):
    request = SAMPLES[method.request]
    assert method.decode(json_trip(method.encode(request))) == request
    if method.is_call:
        reply_types = [t for t in getattr(method.reply, "__args__", (method.reply,))
                       if t is not type(None)]
        for t in reply_types:
            assert method.decode_reply(json_trip(dump(SAMPLES[t]))) == SAMPLES[t]
        error = m.Error("datasource 'x' is not known to the DSD", "not_found")
        assert method.decode_reply(json_trip(dump(error))) == error


@pytest.mark.parametrize("name, wire", sorted(OLD_WIRE.items()))
def test_the_wire_form_is_the_one_older_releases_send_and_take(name, wire):
    method = next(x for x in c.METHODS if x.name == name)
    assert json_trip(method.encode(method.decode(wire))) == wire


def test_every_topic_method_is_declared_once_with_dataclasses():
    names = [(x.topic, x.name) for x in c.METHODS]
    assert len(names) == len(set(names))
    assert {t: sorted(ms) for t, ms in c.TOPICS.items()} == {
        "heartbeat": ["datasources_changed", "goodbye", "heartbeat", "policy_changed"],
        "tables": ["table_delta"],
        "dsd": ["datasource_status", "execute_action", "execute_direct", "leader_status",
                "push_rows", "push_stored", "refresh", "snapshot"]}
    for x in c.METHODS:
        assert dataclasses.is_dataclass(x.request)
        assert x.fanout == (x.topic != c.TOPIC_DSD)


# -- refused at the endpoint ------------------------------------------------------


class Recorder:
    """A handler of every dsd method that records what reached it."""

    def __init__(self):
        self.got = []

    def __getattr__(self, name):
        if name not in c.TOPICS[c.TOPIC_DSD]:
            raise AttributeError(name)

        def handle(message):
            self.got.append((name, message))
            return {"snapshot": None, "leader_status": SAMPLES[m.LeaderStatus],
                    "push_rows": m.Pushed(True, 1)}.get(name, m.Done())
        return handle


def endpoint_of(topic, handler, **kw):
    return c.Endpoint(topic, handler, local_sealer(), **kw)


@pytest.fixture
def dsd():
    handler = Recorder()
    return endpoint_of(c.TOPIC_DSD, handler), handler


def request_wire(**changes):
    return {"request": {**OLD_WIRE["execute_action"]["request"], **changes}}


def test_a_good_message_reaches_the_handler_as_its_dataclass(dsd):
    endpoint, handler = dsd
    assert ask(endpoint, "execute_action", **OLD_WIRE["execute_action"]) is None
    assert ask(endpoint, "push_rows", **OLD_WIRE["push_rows"]) == {"ok": True, "rows": 1}
    assert handler.got == [("execute_action", SAMPLES[m.ActionRequest]),
                           ("push_rows", SAMPLES[m.PushRows])]


def test_an_unknown_method_is_refused_and_answered(dsd, caplog):
    endpoint, handler = dsd
    answer = ask(endpoint, "drop_tables", datasource="in")
    assert answer["kind"] == "unsupported" and "drop_tables" in answer["error"]
    assert "execute_action" in answer["error"]  # the methods the topic does have
    assert handler.got == [] and "refused dsd.drop_tables" in caplog.text


@pytest.mark.parametrize("kwargs, why", [
    (request_wire(action_id=None), "request.action_id: expected a string, got null"),
    (request_wire(args="disk"), "request.args: expected a list, got a string"),
    (request_wire(args=[["nested"]]), "request.args[0]: expected a string, number"),
    (request_wire(extra=1), "request: unknown field extra in ActionRequest"),
    ({"request": {"action_id": "a"}}, "request: missing fields action, datasource"),
    ({"request": "a1b2"}, "request: expected an object (ActionRequest), got a string"),
    ({**request_wire(), "priority": 1}, "unknown arguments priority"),
    ({}, "missing argument request"),
])
def test_a_malformed_cast_is_refused_naming_the_field(dsd, caplog, kwargs, why):
    endpoint, handler = dsd
    answer = ask(endpoint, "execute_action", **kwargs)
    assert handler.got == []
    assert answer["kind"] == "invalid" and why in answer["error"], answer
    assert why in caplog.text


@pytest.mark.parametrize("method, kwargs, why", [
    ("snapshot", {}, "missing field datasource of SnapshotRequest"),
    ("snapshot", {"datasource": "in", "since": 3}, "unknown field since"),
    ("snapshot", {"datasource": 7}, "datasource: expected a string, got an integer"),
    ("push_rows", {"datasource": "in", "table": "t", "rows": {"a": 1}},
     "rows: expected a list, got an object"),
    ("execute_direct", {"datasource": "out", "action": True, "args": []},
     "action: expected a string, got a boolean"),
    ("leader_status", {"verbose": True}, "unknown field verbose"),
])
def test_a_malformed_call_is_answered_with_an_error(dsd, method, kwargs, why):
    endpoint, handler = dsd
    answer = ask(endpoint, method, **kwargs)
    assert handler.got == [] and answer["kind"] == "invalid" and why in answer["error"]


def test_oversized_lists_are_refused_before_any_work():
    hb = dump(HB)
    hb["seqs"] = {f"ds{i}": i for i in range(200_000)}   # once stalled a PE for 90 s
    started = time.monotonic()
    with pytest.raises(Refused, match=r"hb.seqs: 200000 entries; at most 1000"):
        c.HEARTBEAT.decode({"hb": hb})
    assert time.monotonic() - started < 0.5
    with pytest.raises(Refused, match=rf"request.args: {MAX_ITEMS + 1} items"):
        c.EXECUTE_ACTION.decode(request_wire(args=[1] * (MAX_ITEMS + 1)))
    delta = dump(SAMPLES[m.TableDelta])
    delta["added"] = [["x"]] * (MAX_ROWS + 1)
    with pytest.raises(Refused, match=rf"delta.added: {MAX_ROWS + 1} items"):
        c.TABLE_DELTA.decode({"delta": delta})
    with pytest.raises(Refused, match=rf"rows: {MAX_ROWS + 1} items"):
        c.PUSH_ROWS.decode({"datasource": "in", "table": "t", "rows": [[1]] * (MAX_ROWS + 1)})
    row = [1] * (MAX_ITEMS + 1)
    with pytest.raises(Refused, match=rf"delta.removed\[0\]: {MAX_ITEMS + 1} items"):
        c.TABLE_DELTA.decode({"delta": {**dump(SAMPLES[m.TableDelta]), "removed": [row]}})


def test_a_forged_megabyte_name_is_cut_in_the_log(dsd, caplog):
    endpoint, _ = dsd
    ask(endpoint, "snapshot", **{"datasource": "in", "x" * 1_000_000: 1})
    assert max(len(r.getMessage()) for r in caplog.records) < 500


def test_a_flood_of_refusals_is_one_line_per_method_with_a_count(caplog):
    now = [0.0]
    endpoint = endpoint_of(c.TOPIC_DSD, Recorder(), clock=lambda: now[0])
    for _ in range(50):
        ask(endpoint, "execute_action", request="bad")
        ask(endpoint, "no_such_1")
        ask(endpoint, "no_such_2")  # unknown names share one bucket: the table stays small
    assert len(caplog.records) == 2
    now[0] += c.REFUSAL_LOG_EVERY
    ask(endpoint, "execute_action", request="bad")
    assert "(49 more refused since the last report)" in caplog.records[-1].getMessage()
    assert endpoint.refused == 151


def test_a_handler_that_raises_is_logged_and_answered_never_raised(caplog):
    class Broken(Recorder):
        def refresh(self, message):
            raise RuntimeError("disk on fire")

    endpoint = endpoint_of(c.TOPIC_DSD, Broken())
    with caplog.at_level(logging.ERROR):
        answer = ask(endpoint, "refresh", datasource="in")
    assert answer == {"error": "dsd.refresh failed: RuntimeError: disk on fire",
                      "kind": "failed"}
    assert "disk on fire" in caplog.text


def test_an_endpoint_needs_a_handler_for_every_method_of_its_topic():
    class Half:
        def table_delta(self, delta):
            pass

    endpoint_of(c.TOPIC_TABLES, Half())
    with pytest.raises(TypeError, match="goodbye, policy_changed"):
        endpoint_of(c.TOPIC_HEARTBEAT, Half())


def test_the_dispatcher_never_sees_an_exception_from_our_endpoint():
    """oslo.messaging's own dispatcher, as the RPC server runs it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from oslo_messaging.rpc.dispatcher import RPCDispatcher
        from oslo_messaging.serializer import NoOpSerializer

    handler = Recorder()
    dispatcher = RPCDispatcher([endpoint_of(c.TOPIC_DSD, handler)], NoOpSerializer())

    class Incoming:
        def __init__(self, method, args, ctxt=None):
            self.seal = PEER.seal(c.TOPIC_DSD, method, args)
            self.message, self.client_timeout = {"method": method, "args": args}, None
            self.ctxt = {"seal": self.seal} if ctxt is None else ctxt

    def dispatch(incoming):
        return PEER.open_reply(incoming.seal, dispatcher.dispatch(incoming))

    assert dispatcher.dispatch(Incoming("snapshot", {}, ctxt={}))["r"]["kind"] == "forged"
    assert dispatch(Incoming("nope", {"x": 1}))["kind"] == "unsupported"
    assert dispatch(Incoming("snapshot", {"name": 1}))["kind"] == "invalid"
    assert dispatch(Incoming("snapshot", {"datasource": "in"})) is None
    assert handler.got == [("snapshot", m.SnapshotRequest("in"))]


# -- the sending side ---------------------------------------------------------------


class FakeTransport:
    """Records what is sent; a call is answered with ``answer``, sealed by a peer."""

    def __init__(self, answer=None):
        self.sent, self.answer = [], answer
        self.sealer = Sealer(KEYS, "n1")

    def broadcast(self, topic, method, args, seal, retry=None):
        self.sent.append(("broadcast", topic, method, args))

    def cast(self, topic, method, args, seal, retry=None):
        self.sent.append(("cast", topic, method, args))

    def call(self, topic, method, args, seal, timeout=None, retry=None):
        self.sent.append(("call", topic, method, args))
        return PEER.seal_reply(seal, self.answer)


def test_send_and_call_use_the_declared_topic_kind_and_argument():
    t = FakeTransport(answer=dump(SAMPLES[m.Pushed]))
    c.send(t, c.HEARTBEAT, HB)
    c.send(t, c.EXECUTE_ACTION, SAMPLES[m.ActionRequest])
    assert c.call(t, c.PUSH_ROWS, SAMPLES[m.PushRows]) == SAMPLES[m.Pushed]
    assert [(k, topic, name) for k, topic, name, _ in t.sent] == [
        ("broadcast", "heartbeat", "heartbeat"), ("cast", "dsd", "execute_action"),
        ("call", "dsd", "push_rows")]
    assert json_trip(t.sent[1][3]) == OLD_WIRE["execute_action"]
    with pytest.raises(TypeError, match="carries PushRows"):
        c.call(t, c.PUSH_ROWS, m.RefreshRequest("in"))


def test_an_error_reply_is_raised_and_a_malformed_reply_is_a_bus_error():
    t = FakeTransport(answer={"error": "no such table", "kind": "invalid"})
    with pytest.raises(c.ErrorReply, match="no such table") as caught:
        c.call(t, c.PUSH_ROWS, SAMPLES[m.PushRows])
    assert caught.value.kind == "invalid"
    t.answer = {"ok": "yes", "rows": 1}
    with pytest.raises(BusError, match="reply to dsd.push_rows does not fit the bus contract: "
                                       "ok: expected true or false, got a string"):
        c.call(t, c.PUSH_ROWS, SAMPLES[m.PushRows])
    t.answer = None
    assert c.call(t, c.SNAPSHOT, m.SnapshotRequest("gone")) is None


def test_parse_keeps_types_apart():
    assert parse(m.PolicyChanged, {"revision": 3}) == m.PolicyChanged(3)
    with pytest.raises(Refused, match="revision: expected an integer, got a boolean"):
        parse(m.PolicyChanged, {"revision": True})
    with pytest.raises(Refused, match="revision: expected an integer, got a number"):
        parse(m.PolicyChanged, {"revision": 3.0})
    # A number field takes an integer (JSON has one kind of number).
    assert parse(m.Heartbeat, {**dump(HB), "started": 5}).started == 5
    # Tuples arrive from the in-process transport, lists from RabbitMQ.
    assert parse(m.ActionRequest, {**dump(SAMPLES[m.ActionRequest]), "args": ["disk", 3]}) \
        == SAMPLES[m.ActionRequest]


def test_a_malformed_snapshot_reply_names_its_field():
    snap = dump(SAMPLES[m.Snapshot])
    snap["tables"]["alarm"] = [["web1", {"nested": 1}]]
    with pytest.raises(BusError, match=r"tables.alarm\[0\]\[1\]: expected a string, number"):
        c.call(FakeTransport(answer=snap), c.SNAPSHOT, m.SnapshotRequest("in"))
