"""A process on the bus: its identity, heartbeats, peers and goodbye.

Every process has a member id (``node_id:role``) and a random incarnation.
Before it announces itself it listens for ``JOIN_BEATS`` heartbeat intervals:
if another live process already beats with its member id (two of its beats
heard), it refuses to run.  Two that start
at once both notice and the newer one stops.  Heartbeats go out every
``heartbeat_interval``; a process also hears its own, which proves the round
trip through the broker (the health check's "bus ok").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from congress_ha.bus.contract import GOODBYE, HEARTBEAT, TOPIC_HEARTBEAT, Endpoint, send
from congress_ha.bus.messages import (
    DatasourcesChanged,
    Goodbye,
    Heartbeat,
    PolicyChanged,
    member_id,
)
from congress_ha.bus.peers import PeerEvent, PeerTable, newer_of_two
from congress_ha.bus.transport import BusError, Transport
from congress_ha.bus.wire import dump
from congress_ha.threads import Supervised

LOG = logging.getLogger(__name__)
JOIN_BEATS = 2.5


class DuplicateMember(Exception):
    """Another live process already runs with this member id."""


class Listener(Protocol):
    """Any of these methods; a listener implements those it needs."""

    def on_heartbeat(self, hb: Heartbeat, now: float) -> None: ...
    def on_goodbye(self, member: str, incarnation: str, now: float) -> None: ...
    def on_peer_event(self, event: PeerEvent, now: float) -> None: ...
    def on_policy_changed(self, revision: int) -> None: ...
    def on_datasources_changed(self) -> None: ...


EVENTS = ("on_heartbeat", "on_goodbye", "on_peer_event", "on_policy_changed",
          "on_datasources_changed")


class QueuedListener:
    """A listener whose bus events run on a thread of its own, in order.

    The bus thread that takes heartbeats must never wait: it also records this
    process's own heartbeat, the proof behind "bus ok". A listener that takes a
    lock held by long work (the PE and its engine) is queued behind this, so a
    long evaluation delays only that listener.
    """

    def __init__(self, inner: object, member: str) -> None:
        self.inner = inner
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopped = False
        self.thread = Supervised(f"bus-events-{type(inner).__name__}", self._run, member,
                                 lambda: self._stopped)
        self.thread.start()
        for method in EVENTS:
            if hasattr(inner, method):
                setattr(self, method, lambda *args, _m=method: self.queue.put((_m, args)))

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            method, args = item
            try:
                getattr(self.inner, method)(*args)
            except Exception:  # noqa: BLE001 - one bad event must not end the listener
                LOG.exception("%s of %s failed", method, type(self.inner).__name__)

    def stop(self) -> None:
        self._stopped = True
        self.queue.put(None)


class BusNode:
    def __init__(self, transport: Transport, node_id: str, role: str, roles: list[str],
                 heartbeat_interval: float, peer_timeout: float,
                 clock: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.node_id = node_id
        self.member = member_id(node_id, role)
        self.roles = roles
        self.incarnation = uuid.uuid4().hex[:12]
        self.started = time.time()
        self.interval = heartbeat_interval
        self.peer_timeout = peer_timeout
        self.clock = clock
        self.peers = PeerTable(peer_timeout)
        self.listeners: list[Listener] = []
        self.state_fn: Callable[[], dict[str, Any]] = lambda: {"ready": True}
        self.last_self_heard: float | None = None
        self.conflict: str | None = None
        self.on_conflict: Callable[[str], None] = lambda reason: None
        self._beat = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._joining = True
        self._dup_beats: dict[str, int] = {}
        self._send_failing = False
        self._send_error = ""

    # -- lifecycle ------------------------------------------------------------

    def add_listener(self, listener: object, queued: bool = False) -> None:
        """Call ``listener``'s event methods; ``queued``: on a thread of its own."""
        self.listeners.append(QueuedListener(listener, self.member) if queued else listener)

    def threads(self) -> list[threading.Thread | None]:
        return [self._thread] + [lst.thread for lst in self.listeners
                                 if isinstance(lst, QueuedListener)]

    def start(self) -> None:
        """Join: listen for a duplicate for JOIN_BEATS intervals, then beat."""
        self.transport.serve(TOPIC_HEARTBEAT, f"{self.member}.{self.incarnation}",
                             Endpoint(TOPIC_HEARTBEAT, HeartbeatHandler(self),
                                      self.transport.sealer))
        # Long enough to hear a live twin beat twice; every start (and so
        # every DSD failover) pays it, so no longer than that.
        deadline = self.clock() + JOIN_BEATS * self.interval
        while self.clock() < deadline and not self._stop.is_set():
            if self.conflict:
                raise DuplicateMember(self.conflict)
            self._stop.wait(0.02)
        if self.conflict:
            raise DuplicateMember(self.conflict)
        self._joining = False
        self._thread = Supervised("heartbeat", self._run, self.member, self._stop.is_set)
        self._thread.start()
        LOG.info("joined the bus as incarnation %s", self.incarnation)

    def stop(self, goodbye: bool = True) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        for listener in self.listeners:
            if isinstance(listener, QueuedListener):
                listener.stop()
        if goodbye and not self._joining:
            try:
                send(self.transport, GOODBYE, Goodbye(self.member, self.incarnation), retry=1)
                LOG.info("said goodbye")
            except BusError as exc:
                LOG.warning("goodbye not sent: %s", exc)

    # -- heartbeats -----------------------------------------------------------

    def heartbeat(self) -> Heartbeat:
        state = self.state_fn()
        return Heartbeat(member=self.member, node_id=self.node_id,
                         incarnation=self.incarnation, roles=self.roles,
                         started=self.started, beat=self._beat, **state)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat_once()
            self._stop.wait(self.interval)

    def beat_once(self) -> None:
        self._beat += 1
        try:
            # retry=0: a heartbeat that cannot go now is worthless later.
            send(self.transport, HEARTBEAT, self.heartbeat(), retry=0)
            if self._send_failing:
                LOG.info("heartbeats go out again")
            self._send_failing = False
        except BusError as exc:
            if not self._send_failing:
                LOG.warning("heartbeat not sent: %s", exc)
            self._send_failing = True
            self._send_error = str(exc)
        now = self.clock()
        with self._lock:
            events = self.peers.expire(now)
        for ev in events:
            LOG.warning("lost peer %s (%s)", ev.member, ev.detail)
            self._notify("on_peer_event", ev, now)

    # -- endpoint methods (called by oslo.messaging, one thread) --------------

    def heartbeat_in(self, hb: Heartbeat) -> None:
        now = self.clock()
        if hb.member == self.member:
            if hb.incarnation != self.incarnation:
                self._duplicate(hb)
                return
            self.last_self_heard = now
            # In all-in-one mode the PE and the DSD of this process learn of
            # each other through this very heartbeat.
            self._notify("on_heartbeat", hb, now)
            return
        with self._lock:
            events = self.peers.observe(hb, now)
        for ev in events:
            LOG.info("peer %s %s %s", ev.member, ev.kind, ev.detail)
            self._notify("on_peer_event", ev, now)
        self._notify("on_heartbeat", hb, now)

    def goodbye_in(self, member: str, incarnation: str) -> None:
        now = self.clock()
        with self._lock:
            events = self.peers.goodbye(member, incarnation)
        for ev in events:
            LOG.info("peer %s left (goodbye)", member)
            self._notify("on_peer_event", ev, now)
        self._notify("on_goodbye", member, incarnation, now)

    def _duplicate(self, other: Heartbeat) -> None:
        count = self._dup_beats.get(other.incarnation, 0) + 1
        self._dup_beats[other.incarnation] = count
        if count < 2:
            return  # one stray message is not yet proof of a live twin
        if self._joining or newer_of_two(self.heartbeat(), other):
            reason = (f"another live process already runs as {self.member} "
                      f"(incarnation {other.incarnation}, node {other.node_id}); "
                      "each process needs its own node_id: stop the other one or "
                      "change [DEFAULT] node_id / --node-id")
            if self.conflict is None:
                self.conflict = reason
                LOG.error("%s", reason)
                if not self._joining:
                    self.on_conflict(reason)
        elif count == 2:
            LOG.error("a newer process (incarnation %s) also claims %s; it will "
                      "refuse to run", other.incarnation, self.member)

    def _notify(self, method: str, *args) -> None:
        for listener in self.listeners:
            handler = getattr(listener, method, None)
            if handler is None:
                continue  # listeners implement only the events they care about
            try:
                handler(*args)
            except Exception:  # noqa: BLE001 - one listener must not stop the others
                LOG.exception("%s failed", method)

    # -- views ----------------------------------------------------------------

    def bus_ok(self, now: float | None = None) -> tuple[bool, str]:
        now = self.clock() if now is None else now
        if self._send_failing:
            return False, f"heartbeats cannot be sent: {self._send_error}"
        if self.last_self_heard is None:
            return False, (f"none of {self._beat} heartbeats sent has come back through "
                           "the broker yet")
        age = now - self.last_self_heard
        if age > self.peer_timeout:
            return False, f"own heartbeat not heard back for {age:.1f}s: broker unreachable?"
        return True, "bus ok"

    def peer_view(self) -> list[dict[str, Any]]:
        now = self.clock()
        with self._lock:
            return [{**dump(p.heartbeat), "age": round(now - p.last_heard, 3)}
                    for p in self.peers.live()]


class HeartbeatHandler:
    """The heartbeat topic's methods (bus/contract.py), delegating to a BusNode."""

    def __init__(self, node: BusNode):
        self.node = node

    def heartbeat(self, hb: Heartbeat) -> None:
        self.node.heartbeat_in(hb)

    def goodbye(self, msg: Goodbye) -> None:
        self.node.goodbye_in(msg.member, msg.incarnation)

    def policy_changed(self, msg: PolicyChanged) -> None:
        self.node._notify("on_policy_changed", msg.revision)

    def datasources_changed(self, msg: DatasourcesChanged) -> None:
        self.node._notify("on_datasources_changed")
