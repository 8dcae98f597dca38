"""The bus contract: every topic's methods, declared once, used by both sides.

Each ``Method`` names its topic, the dataclass of its request and, for a call,
the dataclass of its reply (``messages.py``).  Senders go through ``send`` and
``call``; receivers serve an ``Endpoint``, which parses every message into its
dataclass before a handler sees it.  An unknown method, a missing or unknown
field, a wrong type or an oversized list is refused there: logged (at most once
per ``REFUSAL_LOG_EVERY`` per method, with a count), answered with an ``Error``
for a call, and never raised into oslo.messaging's dispatcher thread.

A request travels either as its fields (``goodbye(member=..., incarnation=...)``)
or, where ``arg`` is set, as one argument holding it (``heartbeat(hb={...})``):
both are the wire form of the releases before this contract.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from congress_ha.bus.messages import (
    ActionRequest,
    DatasourcesChanged,
    DatasourceStatus,
    DatasourceStatusRequest,
    Done,
    Error,
    ExecuteDirect,
    Goodbye,
    Heartbeat,
    LeaderStatus,
    LeaderStatusRequest,
    PolicyChanged,
    Pushed,
    PushRows,
    PushStored,
    RefreshRequest,
    Snapshot,
    SnapshotRequest,
    TableDelta,
)
from congress_ha.bus.seal import Sealer, SealError, Seen
from congress_ha.bus.transport import BusError
from congress_ha.bus.wire import Refused, dump, names, parse, short

LOG = logging.getLogger(__name__)
REFUSAL_LOG_EVERY = 10.0  # seconds: a flood of bad messages is one line per method, counted

TOPIC_HEARTBEAT = "heartbeat"  # fanout: every process hears every heartbeat and goodbye
TOPIC_TABLES = "tables"        # fanout: the DSD's table deltas, heard by every PE
TOPIC_DSD = "dsd"              # one shared queue, the DSD's: it outlives a DSD that dies


@dataclass(frozen=True)
class Method:
    """One method of a topic: what it carries and what it answers."""

    topic: str
    name: str
    request: type
    reply: Any = None        # None: a cast, no answer; else the reply's type (may be X | None)
    arg: str | None = None   # the request travels as this one argument; None: as its fields
    fanout: bool = False     # to every server of the topic, not to one

    def __str__(self) -> str:
        return f"{self.topic}.{self.name}"

    @property
    def is_call(self) -> bool:
        return self.reply is not None

    def encode(self, message: Any) -> dict[str, Any]:
        if not isinstance(message, self.request):
            raise TypeError(f"{self} carries {self.request.__name__}, not "
                            f"{type(message).__name__}")
        wire = dump(message)
        return {self.arg: wire} if self.arg else wire

    def decode(self, kwargs: dict[str, Any]) -> Any:
        """The request from the keyword arguments oslo.messaging delivers."""
        if self.arg is None:
            return parse(self.request, kwargs)
        if set(kwargs) != {self.arg}:
            unknown = sorted(set(kwargs) - {self.arg})
            raise Refused(f"unknown arguments {names(unknown)}" if unknown
                          else f"missing argument {self.arg}")
        try:
            return parse(self.request, kwargs[self.arg])
        except Refused as exc:
            raise exc.within(self.arg) from None

    def decode_reply(self, answer: Any) -> Any:
        """The reply (an ``Error`` if the call failed), or ``Refused``."""
        if isinstance(answer, dict) and "error" in answer:
            return parse(Error, answer)
        return parse(self.reply, answer)


# Topic heartbeat
HEARTBEAT = Method(TOPIC_HEARTBEAT, "heartbeat", Heartbeat, arg="hb", fanout=True)
GOODBYE = Method(TOPIC_HEARTBEAT, "goodbye", Goodbye, fanout=True)
POLICY_CHANGED = Method(TOPIC_HEARTBEAT, "policy_changed", PolicyChanged, fanout=True)
DATASOURCES_CHANGED = Method(TOPIC_HEARTBEAT, "datasources_changed", DatasourcesChanged,
                             fanout=True)
# Topic tables
TABLE_DELTA = Method(TOPIC_TABLES, "table_delta", TableDelta, arg="delta", fanout=True)
# Topic dsd
EXECUTE_ACTION = Method(TOPIC_DSD, "execute_action", ActionRequest, arg="request")
SNAPSHOT = Method(TOPIC_DSD, "snapshot", SnapshotRequest, Snapshot | None)
LEADER_STATUS = Method(TOPIC_DSD, "leader_status", LeaderStatusRequest, LeaderStatus)
PUSH_ROWS = Method(TOPIC_DSD, "push_rows", PushRows, Pushed)  # from 0.1's API nodes
PUSH_STORED = Method(TOPIC_DSD, "push_stored", PushStored, Pushed)
DATASOURCE_STATUS = Method(TOPIC_DSD, "datasource_status", DatasourceStatusRequest,
                           DatasourceStatus)
EXECUTE_DIRECT = Method(TOPIC_DSD, "execute_direct", ExecuteDirect, Done)
REFRESH = Method(TOPIC_DSD, "refresh", RefreshRequest, Done)

METHODS = (HEARTBEAT, GOODBYE, POLICY_CHANGED, DATASOURCES_CHANGED, TABLE_DELTA,
           EXECUTE_ACTION, SNAPSHOT, LEADER_STATUS, PUSH_ROWS, PUSH_STORED, DATASOURCE_STATUS,
           EXECUTE_DIRECT, REFRESH)
TOPICS: dict[str, dict[str, Method]] = {}
for _m in METHODS:
    TOPICS.setdefault(_m.topic, {})[_m.name] = _m


class ErrorReply(Exception):
    """A call answered with an ``Error``: ``kind`` says which (see messages.Error)."""

    def __init__(self, error: Error) -> None:
        super().__init__(error.error)
        self.kind = error.kind


def send(transport, method: Method, message: Any, retry: int | None = None) -> None:
    """Cast ``message`` (to every server of the topic if the method is fanout)."""
    if method.is_call:
        raise TypeError(f"{method} is a call: use call()")
    args = method.encode(message)
    seal = transport.sealer.seal(method.topic, method.name, args)
    if method.fanout:
        transport.broadcast(method.topic, method.name, args, seal, retry=retry)
    else:
        transport.cast(method.topic, method.name, args, seal, retry=retry)


def call(transport, method: Method, message: Any, timeout: float | None = None,
         retry: int | None = None) -> Any:
    """The checked reply to ``message``; ``ErrorReply`` if the server answered with
    an error, ``BusError`` if nobody answered or the reply does not fit."""
    if not method.is_call:
        raise TypeError(f"{method} is a cast: use send()")
    args = method.encode(message)
    seal = transport.sealer.seal(method.topic, method.name, args)
    answer = transport.call(method.topic, method.name, args, seal, timeout=timeout,
                            retry=retry)
    try:
        reply = method.decode_reply(transport.sealer.open_reply(seal, answer))
    except SealError as exc:
        raise BusError(f"the reply to {method} is not signed by this cluster: {exc}") from None
    except Refused as exc:
        raise BusError(f"the reply to {method} does not fit the bus contract: {exc}") from None
    if isinstance(reply, Error):
        raise ErrorReply(reply)
    return reply


# Every kind of refusal an endpoint counts: the seal's (seal.py), then ours.
REFUSAL_KINDS = ("forged", "stale", "replayed", "invalid", "unsupported")


class Endpoint:
    """The oslo.messaging endpoint of one topic: each message's seal checked
    (``seal.py``: forged, stale and replayed messages are dropped and counted by
    kind in ``refusals``), then the message parsed into its dataclass and given
    to ``handler.<method>(message)``; the reply goes back sealed.

    oslo.messaging finds a method by name on the endpoint; every public name
    answers here, so that an unknown one is refused by us (logged, answered)
    instead of failing inside the dispatcher.
    """

    _ORACLE = frozenset({"target", "oslo_rpc_server_ping"})  # what the dispatcher probes

    def __init__(self, topic: str, handler: object, sealer: Sealer,
                 clock: Callable[[], float] = time.monotonic) -> None:
        methods = TOPICS[topic]
        missing = [name for name in methods if not callable(getattr(handler, name, None))]
        if missing:
            raise TypeError(f"{type(handler).__name__} does not handle {topic} methods "
                            f"{', '.join(missing)}")
        self._topic = topic
        self._methods = methods
        self._handler = handler
        self._clock = clock
        self._sealer = sealer
        self._seen = Seen()
        self._refusals: dict[str, tuple[float, int]] = {}  # method -> (last logged, since)
        self.refused = 0
        self.refusals: dict[str, int] = {}  # kind (forged, stale, replayed, invalid, ...) -> count

    def __getattr__(self, name: str):
        if name.startswith("_") or name in self._ORACLE:
            raise AttributeError(name)
        return partial(self._dispatch, name)

    def _dispatch(self, name: str, ctxt: Any = None, /, **kwargs: Any) -> Any:
        # Positional-only: a message may carry any argument name, "name" too.
        claimed = ctxt.get("seal") if isinstance(ctxt, dict) else None
        try:
            seal = self._sealer.check(self._topic, name, claimed, kwargs, self._seen)
        except SealError as exc:
            # Answered (a caller waits) but with nothing it could use.
            return self._refuse(name, str(exc), exc.kind, {})
        method = self._methods.get(name)
        if method is None:
            return self._refuse(name, f"unknown method; {self._topic} has "
                                f"{', '.join(sorted(self._methods))}", "unsupported", seal)
        try:
            message = method.decode(kwargs)
        except Refused as exc:
            return self._refuse(name, str(exc), "invalid", seal)
        try:
            reply = getattr(self._handler, name)(message)
        except Exception as exc:  # noqa: BLE001 - never into the dispatcher thread
            LOG.exception("%s failed", method)
            return self._sealer.seal_reply(seal, dump(Error(
                f"{method} failed: {type(exc).__name__}: {exc}", "failed")))
        return self._sealer.seal_reply(seal, dump(reply)) if method.is_call else None

    def _refuse(self, name: str, why: str, kind: str, seal: dict[str, Any]) -> dict[str, Any]:
        self.refused += 1
        self.refusals[kind] = self.refusals.get(kind, 0) + 1
        now = self._clock()
        key = name if name in self._methods else "?"  # unknown names: one bucket, bounded
        last, since = self._refusals.get(key, (None, 0))
        if last is None or now - last >= REFUSAL_LOG_EVERY:
            more = f" ({since} more refused since the last report)" if since else ""
            LOG.error("refused %s.%s from the bus: %s%s", self._topic, short(name), why, more)
            self._refusals[key] = (now, 0)
        else:
            self._refusals[key] = (last, since + 1)
        return self._sealer.seal_reply(seal, dump(Error(
            f"{self._topic}.{short(name)} refused: {why}", kind)))
