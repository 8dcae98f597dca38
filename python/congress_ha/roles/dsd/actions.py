"""The DSD's actions: the leader state machine fed, its decisions journaled and run.

Heartbeats, goodbyes, requests and clock ticks go to ``leader.LeaderState``
with the monotonic time; what it decides to execute is recorded in the
journal first (so a DSD restarted anywhere does not run it again), then run
by one executor thread, in order, by the datasource's driver.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from congress_ha.bus.messages import ActionRequest, Heartbeat, LeaderChangeView, LeaderStatus
from congress_ha.bus.peers import PeerEvent
from congress_ha.datasources.base import ActionContext
from congress_ha.leader import Decision, Execute, LeaderState
from congress_ha.metrics import DsdView
from congress_ha.roles.dsd.drivers import DriverSet
from congress_ha.store.db import StoreError
from congress_ha.store.journal import Journal
from congress_ha.timings import seconds

LOG = logging.getLogger(__name__)
MAX_SLEEP = seconds("LEADER_MAX_SLEEP")  # the leader clock sleeps at most this between ticks
JOURNAL_RETRY_MIN, JOURNAL_RETRY_MAX = 0.1, 2.0  # seconds between journal write attempts
JOURNAL_COUNT_EVERY = seconds("JOURNAL_COUNT_EVERY")  # the metrics' journal count, cached


class ActionRunner:
    """The leader machine, the journal and the executor; a bus listener (on the
    bus thread: leader decisions must not queue)."""

    def __init__(self, ha, node, drivers: DriverSet, journal: Journal | None,
                 clock: Callable[[], float] = time.monotonic):
        self.node = node
        self.drivers = drivers
        self.journal = journal
        self.clock = clock
        self.leader = LeaderState(peer_timeout=ha.peer_timeout,
                                  shadow_size=ha.shadow_log_size,
                                  shadow_age=ha.shadow_log_age,
                                  shadow_grace=ha.shadow_grace)
        # The machine's lock: the bus thread, the clock and status calls share it.
        self.lock = threading.Lock()
        self.executions: queue.Queue[Execute | None] = queue.Queue()
        self.executed_total = 0
        self.skipped_by_journal = 0
        self.failed_actions = 0
        self.journal_blocked_since: float | None = None  # the executor waits for the DB
        self.stopping = threading.Event()  # set by the role's stop: no more waiting
        self.last_executed_at: float | None = None  # monotonic
        self._journal_rows: int | None = None
        self._journal_counted: float | None = None

    def load_journal(self) -> None:
        """What earlier DSDs executed, so that it is never executed again."""
        if self.journal is not None:
            ids = self.journal.recent_ids()
            self.leader.mark_executed(ids)
            LOG.info("journal: %d executed actions known", len(ids))

    # -- events ---------------------------------------------------------------

    def on_heartbeat(self, hb: Heartbeat, now: float) -> None:
        if hb.is_pe:
            self._apply(lambda: self.leader.heard(hb.member, hb.incarnation, hb.ready, now))

    def on_goodbye(self, member: str, incarnation: str, now: float) -> None:
        self._apply(lambda: self.leader.goodbye(member, incarnation, now))

    def on_peer_event(self, event: PeerEvent, now: float) -> None:
        pass  # the leader machine keeps its own view of PE contact

    def on_request(self, req: ActionRequest) -> None:
        now = self.clock()
        self.node.peers.touch(req.pe, req.incarnation, now)
        self._apply(lambda: self.leader.request(req, now))

    def _apply(self, step: Callable[[], Decision]) -> None:
        with self.lock:
            decision = step()
        for change in decision.changes:
            LOG.warning("action leader %s -> %s: %s",
                        change.old[0] if change.old else None,
                        change.new[0] if change.new else None, change.reason)
        for text in decision.warnings:
            LOG.warning("%s", text)
        for ex in decision.execute:
            LOG.debug("execute %s (%s)", ex.request.action_id, ex.reason)
            self.executions.put(ex)

    # -- threads --------------------------------------------------------------

    def ticker(self, stop) -> None:
        """The leader clock: until ``stop`` (an Event) is set.

        Sleeps until the machine's next deadline (a leader's expiry, a shadow
        entry's grace), capped so that a deadline that appears meanwhile (a
        new leader) is seen within MAX_SLEEP.
        """
        while not stop.is_set():
            with self.lock:
                deadline = self.leader.next_deadline()
            now = self.clock()
            sleep = MAX_SLEEP if deadline is None else min(MAX_SLEEP, max(0.0, deadline - now))
            if stop.wait(sleep):
                return
            self._apply(lambda: self.leader.tick(self.clock()))

    def executor(self) -> None:
        """Run what the machine decided, in order, until a None in the queue."""
        while True:
            ex = self.executions.get()
            if ex is None:
                return
            self._execute(ex)

    def _record(self, ex: Execute) -> bool | None:
        """Journal ``ex`` (True: recorded now, run it; False: already recorded).

        While the database is away the executor waits for it, retrying, and
        everything after this action waits in order behind it: an accepted
        action is late, never dropped. None if the DSD stops meanwhile.
        """
        req = ex.request
        delay = JOURNAL_RETRY_MIN
        while True:
            try:
                fresh = self.journal.record(req.action_id, req.datasource, req.action,
                                            list(req.args), req.pe, self.node.member,
                                            ex.reason)
            except StoreError as exc:
                if self.journal_blocked_since is None:
                    self.journal_blocked_since = self.clock()
                    LOG.error("action %s waits for the journal: %s", req.action_id, exc)
                if self.stopping.wait(delay):
                    LOG.error("action %s not executed: stopped while the journal was "
                              "unavailable", req.action_id)
                    return None
                delay = min(delay * 2, JOURNAL_RETRY_MAX)
                continue
            if self.journal_blocked_since is not None:
                LOG.warning("journal available again after %.1fs",
                            self.clock() - self.journal_blocked_since)
                self.journal_blocked_since = None
            return fresh

    def _execute(self, ex: Execute) -> None:
        req = ex.request
        if self.journal is not None:
            fresh = self._record(ex)
            if fresh is None:
                return  # stopping with the database still away
            if not fresh:
                self.skipped_by_journal += 1
                LOG.info("action %s already in the journal: not repeated", req.action_id)
                return
        driver = self.drivers.drivers.get(req.datasource)
        if driver is None:
            self.failed_actions += 1
            LOG.error("action %s: no datasource %r on this DSD", req.action_id, req.datasource)
            return
        try:
            driver.execute(req.action, list(req.args),
                           ActionContext(req.action_id, req.pe, ex.reason))
            self.executed_total += 1
            self.last_executed_at = self.clock()
        except Exception as exc:  # noqa: BLE001 - a driver's failure must not stop others
            self.failed_actions += 1
            LOG.error("action %s %s:%s%s failed: %s", req.action_id,
                      req.datasource, req.action, list(req.args), exc)

    # -- views ----------------------------------------------------------------

    def current_leader(self) -> tuple[str | None, int]:
        """The leader's member id (None: none) and how many times it changed."""
        with self.lock:
            lead = self.leader.leader
            return (lead[0] if lead else None), self.leader.counters.leader_changes

    def status(self) -> LeaderStatus:
        now = self.clock()
        with self.lock:
            lead = self.leader.leader
            since = self.leader.leader_since
            return LeaderStatus(
                dsd=self.node.member, incarnation=self.node.incarnation,
                leader=lead[0] if lead else None,
                leader_incarnation=lead[1] if lead else None,
                leader_for=round(now - since, 3) if since is not None else None,
                counters=vars(self.leader.counters).copy(),
                executed_total=self.executed_total,
                skipped_by_journal=self.skipped_by_journal,
                failed_actions=self.failed_actions,
                shadow_log=self.leader.shadow_len,
                history=[LeaderChangeView(round(now - c.at, 3),
                                          c.old[0] if c.old else None,
                                          c.new[0] if c.new else None, c.reason)
                         for c in self.leader.history])

    def journal_rows(self) -> int | None:
        """The journal's row count, counted at most every JOURNAL_COUNT_EVERY seconds
        (None: no journal, or no count has worked yet)."""
        if self.journal is None:
            return None
        now = self.clock()
        if self._journal_counted is None or now - self._journal_counted >= JOURNAL_COUNT_EVERY:
            self._journal_counted = now  # a failing database is not asked at every scrape
            try:
                self._journal_rows = self.journal.count()
            except StoreError as exc:
                LOG.warning("journal rows not counted: %s", exc)
        return self._journal_rows

    def metrics_view(self, seqs: dict[str, int]) -> DsdView:
        now = self.clock()
        with self.lock:
            changes = dict(self.leader.changes_by_cause)
            present = self.leader.leader is not None
            shadow, dropped = self.leader.shadow_len, self.leader.counters.shadow_dropped
        last = self.last_executed_at
        return DsdView(
            leader_present=present, leader_changes=changes,
            actions={"executed": self.executed_total,
                     "skipped_by_journal": self.skipped_by_journal,
                     "failed": self.failed_actions},
            shadow_log=shadow, shadow_dropped=dropped,
            action_gap=round(now - last, 6) if last is not None else None,
            journal_rows=self.journal_rows(), seqs=seqs,
            journal_waiting=0.0 if self.journal_blocked_since is None
            else round(now - self.journal_blocked_since, 3))
