"""The policy-engine (PE) role: a replica of every table, actions derived and sent.

The PE applies the DSD's table deltas in sequence (``TableReplica``), asks for
a snapshot when it falls out of sequence, feeds what changed to its deriver,
and casts one execution request per derived action to the DSD.  Every PE does
this; the DSD decides whose requests run.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from congress_ha.bus.messages import Heartbeat, Snapshot, TableDelta
from congress_ha.bus.node import BusNode
from congress_ha.bus.peers import PeerEvent
from congress_ha.bus.tables import Change, TableReplica
from congress_ha.bus.transport import TOPIC_DSD, TOPIC_TABLES, BusError, Transport
from congress_ha.roles.relay import DerivedAction

LOG = logging.getLogger(__name__)


class PolicyEngineRole:
    def __init__(self, settings, node: BusNode, transport: Transport, deriver,
                 clock=time.monotonic):
        self.settings = settings
        self.node = node
        self.transport = transport
        self.deriver = deriver
        self.clock = clock
        # Two heartbeats behind with no delta arriving means deltas were lost.
        self.replica = TableReplica(behind_grace=2 * settings.ha.heartbeat_interval)
        self.lock = threading.RLock()
        self.dsd: tuple[str, str] | None = None  # (member, incarnation) of the live DSD
        self.announced: list[str] = []
        self.sent = 0
        self.send_failures = 0
        self.sending = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self.node.listeners.append(self)
        self.transport.serve(TOPIC_TABLES, f"{self.node.member}.{self.node.incarnation}",
                             TablesEndpoint(self))
        self.sending = True
        self._thread = threading.Thread(target=self._sync_loop, name="table-sync",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop deriving and sending first: after this no request leaves this PE."""
        with self.lock:
            self.sending = False
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=3)

    # -- bus events -----------------------------------------------------------

    def on_heartbeat(self, hb: Heartbeat, now: float) -> None:
        if not hb.is_dsd:
            return
        with self.lock:
            if self.dsd != (hb.member, hb.incarnation):
                LOG.info("[%s] DSD is %s (incarnation %s)", self.node.member, hb.member,
                         hb.incarnation)
            self.dsd = (hb.member, hb.incarnation)
            self.announced = sorted(hb.seqs)
            actions = self._derive(self.replica.on_heartbeat(hb.incarnation, hb.seqs, now))
            needs = self.replica.needs_snapshot()
        self._send(actions)
        if needs:
            self._wake.set()

    def on_goodbye(self, member: str, incarnation: str, now: float) -> None:
        with self.lock:
            if self.dsd == (member, incarnation):
                self.dsd = None

    def on_peer_event(self, event: PeerEvent, now: float) -> None:
        if event.kind in ("lost", "left"):
            with self.lock:
                if self.dsd == (event.member, event.incarnation):
                    LOG.warning("[%s] DSD %s lost", self.node.member, event.member)
                    self.dsd = None

    def on_delta(self, data: dict) -> None:
        delta = TableDelta.from_dict(data)
        with self.lock:
            actions = self._derive(self.replica.on_delta(delta))
            needs = self.replica.needs_snapshot()
        self._send(actions)
        if needs:
            self._wake.set()

    # -- snapshots ------------------------------------------------------------

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.ha.heartbeat_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self.lock:
                needed = [n for n in self.replica.needs_snapshot() if n in self.announced]
            for name in needed:
                self._fetch(name)

    def _fetch(self, name: str) -> None:
        try:
            data = self.transport.call(TOPIC_DSD, "snapshot", datasource=name)
        except BusError as exc:
            LOG.warning("[%s] snapshot of %s failed: %s", self.node.member, name, exc)
            return
        if data is None:
            return  # the DSD no longer has it; its next heartbeat drops it
        snap = Snapshot.from_dict(data)
        with self.lock:
            actions = self._derive(self.replica.on_snapshot(snap))
        LOG.info("[%s] resynced %s from a snapshot at seq %d", self.node.member, name,
                 snap.seq)
        self._send(actions)

    # -- actions --------------------------------------------------------------

    def _derive(self, changes: list[Change]) -> list[DerivedAction]:
        """Called under the lock, so the deriver sees changes in replica order."""
        return self.deriver.apply(changes) if changes else []

    def _send(self, actions: list[DerivedAction]) -> None:
        for action in actions:
            self.request_action(action)

    def request_action(self, action: DerivedAction) -> None:
        """Cast one execution request to the DSD: the call the engine makes."""
        if not self.sending:
            return
        request = {"action_id": action.action_id, "pe": self.node.member,
                   "incarnation": self.node.incarnation, "datasource": action.datasource,
                   "action": action.action, "args": list(action.args)}
        try:
            self.transport.cast(TOPIC_DSD, "execute_action", request=request)
            self.sent += 1
        except BusError as exc:
            self.send_failures += 1
            LOG.error("[%s] action %s not sent: %s", self.node.member, action.action_id, exc)

    # -- views ----------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        with self.lock:
            if self.dsd is None:
                return False, "no live DSD heard"
            missing = [n for n in self.announced if not self.replica.is_synced([n])]
            if missing:
                return False, "not synced: " + ", ".join(missing)
            return True, f"synced with {self.dsd[0]} ({len(self.announced)} datasources)"

    def view(self) -> dict[str, Any]:
        with self.lock:
            return {"dsd": self.dsd[0] if self.dsd else None,
                    "seqs": self.replica.seqs(), "resyncs": self.replica.resyncs,
                    "gaps": self.replica.gaps, "actions_sent": self.sent,
                    "send_failures": self.send_failures}


class TablesEndpoint:
    """oslo.messaging endpoint of the ``tables`` fanout topic."""

    def __init__(self, role: PolicyEngineRole):
        self.role = role

    def table_delta(self, ctxt, delta: dict) -> None:
        self.role.on_delta(delta)
