"""The policy-engine (PE) role: a replica of every table, actions derived and sent.

The PE applies the DSD's table deltas in sequence (``TableReplica``), asks for
a snapshot when it falls out of sequence, feeds what changed to its Datalog
engine, and casts one execution request per action the engine derives to the
DSD.  Every PE does this; the DSD decides whose requests run.  A request whose
cast fails (the broker down) waits in the PE's outbox and is sent, in order,
once the broker takes casts again; the DSD's journal and leader drop copies.  Policies reach
the engine through the ``PolicyManager`` (roles/policies.py), synced on a
``policy_changed`` broadcast and by a poll every ``POLICY_POLL`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from congress_ha.bus.contract import (
    EXECUTE_ACTION,
    SNAPSHOT,
    TOPIC_TABLES,
    Endpoint,
    ErrorReply,
    call,
    send,
)
from congress_ha.bus.messages import ActionRequest, Heartbeat, SnapshotRequest, TableDelta
from congress_ha.bus.node import BusNode
from congress_ha.bus.peers import PeerEvent
from congress_ha.bus.tables import Change, TableReplica
from congress_ha.bus.transport import BusError, Transport
from congress_ha.engine import PolicyError
from congress_ha.metrics import PeView
from congress_ha.threads import Supervised
from congress_ha.timings import seconds

LOG = logging.getLogger(__name__)
POLICY_POLL = seconds("POLICY_POLL")  # the backstop for a missed policy_changed
# A new DSD incarnation gets again every request sent since RESEND_LEAD
# seconds before the old one was last heard: a DSD that dies takes some
# requests with it unexecuted (its last moments, or, cut off from the broker
# without closing its connection, whatever the broker still handed it).
RESEND_LEAD = seconds("RESEND_LEAD")
RESEND_MAX = 5000
REJECT_RETRY = seconds("REJECT_RETRY")  # between snapshots of a rejected datasource


class PolicyEngineRole:
    def __init__(self, settings, node: BusNode, transport: Transport, engine, lock,
                 clock=time.monotonic):
        self.settings = settings
        self.node = node
        self.transport = transport
        self.engine = engine
        self.policies = None  # a PolicyManager, set by the server
        self.clock = clock
        # Two heartbeats behind with no delta arriving means deltas were lost.
        self.replica = TableReplica(behind_grace=2 * settings.ha.heartbeat_interval)
        self.lock = lock  # shared with the PolicyManager: one engine, one lock
        self.dsd: tuple[str, str] | None = None  # (member, incarnation) of the live DSD
        self.last_dsd: str | None = None         # incarnation of the last DSD heard
        self.last_dsd_heard = 0.0                # and when (monotonic)
        self.sent_log: deque[tuple[float, ActionRequest]] = deque(maxlen=RESEND_MAX)
        self.announced: list[str] = []
        self.sent = 0
        self.send_failures = 0
        # Requests not yet taken by the broker, oldest first (its confirm is the
        # proof); their own lock: the bus, table and API threads all send.
        self.unsent: deque[ActionRequest] = deque()
        self.unsent_dropped = 0
        self._outbox_lock = threading.Lock()
        self.sending = False
        self._policy_due = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready: tuple[bool, str] = (False, "starting")
        self._data_ok = False  # every announced datasource synced, policies loaded
        self.rejected: dict[str, tuple[str, float]] = {}  # datasource -> (why, retry at)
        self.rebuilds = 0
        # Seconds of each evaluation of table changes (the server's histogram).
        self.observe_evaluation: Callable[[float], None] = lambda seconds: None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        # Queued: its handlers take the engine lock, which long work can hold.
        self.node.add_listener(self, queued=True)
        self.transport.serve(TOPIC_TABLES, f"{self.node.member}.{self.node.incarnation}",
                             Endpoint(TOPIC_TABLES, TablesHandler(self),
                                      self.transport.sealer))
        self.sending = True
        self._thread = Supervised("table-sync", self._sync_loop, self.node.member,
                                  self._stop.is_set)
        self._thread.start()

    def stop(self) -> None:
        """Stop deriving and sending first: after this no request leaves this PE."""
        with self.lock:
            self.sending = False
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=3)

    def threads(self) -> list:
        return [self._thread]

    # -- bus events -----------------------------------------------------------

    def on_heartbeat(self, hb: Heartbeat, now: float) -> None:
        if not hb.is_dsd:
            return
        resend: list[ActionRequest] = []
        with self.lock:
            if self.dsd != (hb.member, hb.incarnation):
                LOG.info("DSD is %s (incarnation %s)", hb.member,
                         hb.incarnation)
                if self.last_dsd is not None and self.last_dsd != hb.incarnation:
                    resend = self._since(self.last_dsd_heard - RESEND_LEAD)
                self.last_dsd = hb.incarnation
            self.dsd = (hb.member, hb.incarnation)
            self.last_dsd_heard = now
            self.announced = sorted(hb.seqs)
            actions = self._derive(self.replica.on_heartbeat(hb.incarnation, hb.seqs, now))
            needs = self.replica.needs_snapshot()
        self.send_actions(actions)
        if self.unsent:
            self._wake.set()  # the broker is back (a heartbeat came): flush the outbox
        if resend:
            # A new DSD: what the old one took but never ran is lost with it,
            # so send again what went out lately. The journal and the
            # leader's dedup make copies of what did run harmless.
            LOG.warning("new DSD: resending %d requests sent since %.0fs before the "
                        "old one was last heard", len(resend), RESEND_LEAD)
            for request in resend:
                self._cast(request)
        if needs:
            self._wake.set()

    def _since(self, start: float) -> list[ActionRequest]:
        return [r for t, r in self.sent_log if t >= start]

    def on_goodbye(self, member: str, incarnation: str, now: float) -> None:
        with self.lock:
            if self.dsd == (member, incarnation):
                self.dsd = None

    def on_peer_event(self, event: PeerEvent, now: float) -> None:
        if event.kind in ("lost", "left"):
            with self.lock:
                if self.dsd == (event.member, event.incarnation):
                    LOG.warning("DSD %s lost", event.member)
                    self.dsd = None

    def on_delta(self, delta: TableDelta) -> None:
        with self.lock:
            if delta.datasource in self.rejected:
                return  # only a snapshot that passes the checks brings it back
            try:
                self.engine.check_data(delta.datasource, None,
                                       {delta.table: list(delta.added) + list(delta.removed)})
            except PolicyError as exc:
                self._reject(delta.datasource, f"delta {delta.seq}: {exc}")
                return
            actions = self._derive(self.replica.on_delta(delta))
            needs = self.replica.needs_snapshot()
        self.send_actions(actions)
        if needs:
            self._wake.set()

    # -- snapshots ------------------------------------------------------------

    def on_policy_changed(self, revision: int) -> None:
        self._policy_due = True
        self._wake.set()

    def _sync_loop(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.settings.ha.heartbeat_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.flush_unsent()
            if self.policies is not None and (self._policy_due or self.clock() >= next_poll):
                self._policy_due = False
                next_poll = self.clock() + POLICY_POLL
                self.policies.sync()
            with self.lock:
                now = self.clock()
                needed = [n for n in self.replica.needs_snapshot() if n in self.announced
                          and self.rejected.get(n, ("", 0.0))[1] <= now]
            for name in needed:
                self._fetch(name)

    def _fetch(self, name: str) -> None:
        try:
            snap = call(self.transport, SNAPSHOT, SnapshotRequest(name))
        except (BusError, ErrorReply) as exc:
            LOG.warning("snapshot of %s failed: %s", name, exc)
            return
        if snap is None:
            return  # the DSD no longer has it; its next heartbeat drops it
        with self.lock:
            try:
                # All of it checked before the replica or the engine changes.
                self.engine.check_data(snap.datasource, snap.schema, snap.tables)
                self.engine.set_schema(snap.datasource, snap.schema)
            except PolicyError as exc:
                self._reject(snap.datasource, f"snapshot at seq {snap.seq}: {exc}")
                return
            if self.rejected.pop(snap.datasource, None) is not None:
                LOG.warning("datasource %s accepted again", name)
            changes = self.replica.on_snapshot(snap)
            actions = self._derive(changes)
        LOG.debug("snapshot of %s: %d rows changed, %d actions", name,
                  sum(len(c.added) + len(c.removed) for c in changes), len(actions))
        LOG.info("resynced %s from a snapshot at seq %d", name,
                 snap.seq)
        self.send_actions(actions)

    def _reject(self, datasource: str, why: str) -> None:
        """Keep the last good state of ``datasource``; retry later; say why, once.

        Every PE gets the same data, so a row or schema the engine refuses would
        otherwise fail on every PE at once; instead the datasource's previous
        state stays, readiness says why, and a snapshot is tried again later.
        """
        if self.rejected.get(datasource, (None,))[0] != why:
            LOG.error("datasource %s rejected, its previous state kept: %s", datasource, why)
        self.rejected[datasource] = (why, self.clock() + REJECT_RETRY)
        rep = self.replica.replicas.get(datasource)
        if rep is not None:
            rep.synced = False

    # -- actions --------------------------------------------------------------

    def _derive(self, changes: list[Change]) -> list:
        """Called under the lock, so the engine sees changes in replica order."""
        actions: list = []
        if not changes:
            return actions
        started = time.perf_counter()
        try:
            for c in changes:
                actions += self.engine.apply_delta(c.datasource, c.table, c.added, c.removed)
        except Exception as exc:  # noqa: BLE001 - checked data failed: an engine bug
            LOG.exception("the engine failed on a table change; rebuilding it")
            self.rebuild_engine(f"{type(exc).__name__}: {exc}")
            return []
        self.observe_evaluation(time.perf_counter() - started)
        return actions

    def rebuild_engine(self, reason: str) -> None:
        """Replace the engine by one built from the replica and the policies held.

        Never serve from an engine that raised where it should not: it may hold
        half a change. The new one continues the old one's action occurrence
        counts and is loaded quietly, so nothing already derived is sent again;
        what the failed change itself would have derived is not sent (logged).
        """
        with self.lock:
            new = self.engine.successor()
            with new.quiet():
                for name, rep in self.replica.replicas.items():
                    if not rep.synced:
                        continue
                    try:
                        new.set_schema(name, rep.schema)
                        for table, rows in rep.tables.items():
                            new.replace_table(name, table, rows)
                    except PolicyError as exc:
                        self._reject(name, f"rebuild: {exc}")
                if self.policies is not None:
                    self.policies.engine = new
                    self.policies.load_into(new)
            self.engine = new
            self.rebuilds += 1
        LOG.error("engine rebuilt from the replica and the stored policies (rebuild "
                  "%d) after: %s", self.rebuilds, reason)

    def send_actions(self, actions: list) -> None:
        for action in actions:
            self.request_action(action)

    def request_action(self, action) -> None:
        """Cast one execution request to the DSD: the call the engine makes."""
        if not self.sending:
            return
        request = ActionRequest(action.action_id, self.node.member, self.node.incarnation,
                                action.datasource, action.action, tuple(action.args))
        with self.lock:
            self.sent_log.append((self.clock(), request))
        self._cast(request)

    def _cast(self, request: ActionRequest) -> None:
        """Send now, or keep it in the outbox behind the ones still waiting there
        (the outbox is sent in order: one failed cast does not make the next
        one wait out its own retries while the broker is down)."""
        with self._outbox_lock:
            waiting = bool(self.unsent)
            if waiting:
                self._keep(request)
        if not waiting and not self._send(request):
            with self._outbox_lock:
                self._keep(request)

    def _keep(self, request: ActionRequest) -> None:
        """Under the outbox lock; the oldest is dropped (and counted) when full."""
        if len(self.unsent) >= RESEND_MAX:
            dropped = self.unsent.popleft()
            self.unsent_dropped += 1
            LOG.error("outbox full (%d requests): action %s dropped", RESEND_MAX,
                      dropped.action_id)
        self.unsent.append(request)

    def flush_unsent(self) -> int:
        """Send the outbox in order until a cast fails; how many went out."""
        sent = 0
        while True:
            with self._outbox_lock:
                if not self.unsent:
                    break
                request = self.unsent[0]
            if not self._send(request):
                break
            with self._outbox_lock:
                if self.unsent and self.unsent[0] is request:
                    self.unsent.popleft()
            sent += 1
        if sent:
            LOG.warning("outbox: %d requests sent after the bus came back", sent)
        return sent

    def _send(self, request: ActionRequest) -> bool:
        """One cast; True once the broker confirmed it (oslo.messaging publishes
        with confirms)."""
        try:
            send(self.transport, EXECUTE_ACTION, request)
        except BusError as exc:
            self.send_failures += 1
            LOG.error("action %s not sent, kept in the outbox: %s", request.action_id, exc)
            return False
        self.sent += 1
        LOG.debug("requested %s %s:%s%s", request.action_id, request.datasource,
                  request.action, list(request.args))
        return True

    # -- views ----------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        """Ready or why not; never waits for the engine lock.

        Heartbeats and health ask this: while an evaluation holds the lock, the
        answer computed when the lock was last free is given, so liveness never
        waits on work (a long rule check once stopped heartbeats for 17 s).
        """
        if not self.lock.acquire(blocking=False):
            return self._ready
        try:
            self._ready = self._compute_ready()
        finally:
            self.lock.release()
        return self._ready

    def serving(self) -> bool:
        """For the load balancer (GET /readyz): ready, or only without a DSD just
        now while holding everything the last one published. During a DSD
        failover every PE is equally behind; taking them all out of the load
        balancer would stop the reads too. Never waits for the engine lock."""
        ready, _ = self.ready()
        return ready or (self.dsd is None and self.last_dsd is not None and self._data_ok)

    def _compute_ready(self) -> tuple[bool, str]:
        data = self._data_state()
        self._data_ok = data[0]
        if self.dsd is None:
            return False, "no live DSD heard"
        return data

    def _data_state(self) -> tuple[bool, str]:
        if self.rejected:
            return False, "; ".join(f"datasource {n} rejected: {why}"
                                    for n, (why, _) in sorted(self.rejected.items()))
        missing = [n for n in self.announced if not self.replica.is_synced([n])]
        if missing:
            return False, "not synced: " + ", ".join(missing)
        if self.policies is not None and self.policies.revision < 0:
            return False, "policies not loaded yet"
        source = self.dsd[0] if self.dsd else "the last DSD"
        return True, f"synced with {source} ({len(self.announced)} datasources)"

    def schema(self, datasource: str) -> dict[str, list[str]] | None:
        with self.lock:
            rep = self.replica.replicas.get(datasource)
            return dict(rep.schema) if rep is not None and rep.schema else None

    def schemas(self) -> dict[str, dict[str, list[str]]]:
        with self.lock:
            return {n: dict(r.schema) for n, r in self.replica.replicas.items() if r.schema}

    def rows(self, datasource: str, table: str) -> set[tuple]:
        with self.lock:
            return self.replica.rows(datasource, table)

    def metrics_view(self) -> PeView | None:
        """The replica's positions; None while an evaluation holds the engine past a
        moment (a scrape must not wait for it)."""
        if not self.lock.acquire(timeout=0.2):
            return None
        try:
            return PeView(seqs=self.replica.seqs(), lags=self.replica.lags(),
                          synced=self.replica.synced(), outbox=len(self.unsent),
                          outbox_dropped=self.unsent_dropped)
        finally:
            self.lock.release()

    def view(self) -> dict[str, Any]:
        """For status: waits at most a moment for the engine, then says it is busy."""
        locked = self.lock.acquire(timeout=0.2)
        try:
            view = {"dsd": self.dsd[0] if self.dsd else None,
                    "policy_revision": self.policies.revision if self.policies else None,
                    "seqs": dict(self.replica.seqs()) if locked else None,
                    "resyncs": self.replica.resyncs, "gaps": self.replica.gaps,
                    "actions_sent": self.sent, "send_failures": self.send_failures,
                    "outbox": len(self.unsent), "outbox_dropped": self.unsent_dropped,
                    "rejected": {n: why for n, (why, _) in self.rejected.items()},
                    "engine_rebuilds": self.rebuilds,
                    "quarantined_rules": [
                        {"id": rid, "policy": pol, "rule": text, "error": why}
                        for rid, (pol, text, why) in sorted(
                            (self.policies.quarantined if self.policies else {}).items())]}
        finally:
            if locked:
                self.lock.release()
        if not locked:
            view["engine_busy"] = True
        return view


class TablesHandler:
    """The ``tables`` topic's methods (bus/contract.py)."""

    def __init__(self, role: PolicyEngineRole):
        self.role = role

    def table_delta(self, delta: TableDelta) -> None:
        self.role.on_delta(delta)
