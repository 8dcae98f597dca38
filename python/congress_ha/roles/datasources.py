"""The datasource-driver (DSD) role: drivers, table publication, actions.

It runs every enabled datasource of the database, publishes table deltas with
sequence numbers, answers snapshot calls, and feeds action requests to the
local leader state machine (``congress_ha.leader``).  What the machine decides
to execute is journaled first, then run by one executor thread in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from types import SimpleNamespace
from typing import Any

from congress_ha.bus.messages import Heartbeat
from congress_ha.bus.node import BusNode
from congress_ha.bus.peers import PeerEvent
from congress_ha.bus.tables import TablePublisher
from congress_ha.bus.transport import TOPIC_DSD, TOPIC_TABLES, BusError, Transport
from congress_ha.config import limit
from congress_ha.datasources.base import Driver, DriverError
from congress_ha.datasources.push import PushDriver
from congress_ha.datasources.registry import make_driver
from congress_ha.engine import PolicyError
from congress_ha.engine.builtins import CLOCK
from congress_ha.engine.engine import check_rows
from congress_ha.leader import Decision, Execute, LeaderState, Request
from congress_ha.store.datasources import list_datasources, pushed_rows, save_pushed_rows
from congress_ha.store.db import StoreError
from congress_ha.store.journal import Journal
from congress_ha.threads import Supervised

LOG = logging.getLogger(__name__)
DATASOURCE_POLL = 5.0  # seconds: the backstop for a missed datasources_changed
MAX_SLEEP = 0.05  # seconds the leader clock sleeps at most between two ticks
CLOCK_DATASOURCE = CLOCK[0]  # "builtin": the clock table builtin:now that now(x) reads


class DatasourceRole:
    def __init__(self, settings, node: BusNode, transport: Transport, sessions,
                 clock=time.monotonic):
        self.settings = settings
        self.node = node
        self.transport = transport
        self.sessions = sessions
        self.clock = clock
        self.max_rows = limit(settings, "max_rows_per_table")
        # The clock that now(x) reads: a datasource of our own, never stored.
        resolution = getattr(getattr(settings, "engine", None), "now_resolution", 1.0)
        self.clock_datasource = SimpleNamespace(
            name=CLOCK_DATASOURCE, driver="clock",
            config={"resolution": max(1.0, resolution)}) if resolution else None
        ha = settings.ha
        self.leader = LeaderState(peer_timeout=ha.peer_timeout,
                                  shadow_size=ha.shadow_log_size,
                                  shadow_age=ha.shadow_log_age,
                                  shadow_grace=ha.shadow_grace)
        self.journal = Journal(sessions) if ha.action_journal else None
        self.publisher = TablePublisher(node.incarnation)
        self.drivers: dict[str, Driver] = {}
        self.definitions: dict[str, tuple[str, str]] = {}  # name -> (driver, config json)
        self.updates: dict[str, tuple[int, float]] = {}    # name -> (count, wall time)
        self._reload_due = threading.Event()
        self.errors: dict[str, str] = {}
        self.lock = threading.RLock()
        self.executions: queue.Queue[Execute | None] = queue.Queue()
        self.executed_total = 0
        self.skipped_by_journal = 0
        self.failed_actions = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.accepting = False

    # -- lifecycle ------------------------------------------------------------

    def prepare(self) -> None:
        """What needs no bus: read the journal (runs while the node joins)."""
        if self.journal is not None:
            ids = self.journal.recent_ids()
            self.leader.mark_executed(ids)
            LOG.info("journal: %d executed actions known", len(ids))

    def start(self) -> None:
        self.reload_datasources()
        self.node.add_listener(self)  # on the bus thread: leader decisions at once
        self._server = self.transport.serve(TOPIC_DSD, self.node.member, DsdEndpoint(self))
        self.accepting = True
        for target, name in ((self._executor, "executor"), (self._ticker, "leader-tick"),
                             (self._reloader, "datasource-reload")):
            t = Supervised(name, target, self.node.member, self._stop.is_set)
            t.start()
            self._threads.append(t)

    def threads(self) -> list:
        return list(self._threads)

    def stop(self) -> None:
        """Stop taking requests (they wait in the queue for a successor), drain.

        The consumer goes first: a request taken after the executor's last
        item would be acknowledged and then dropped.
        """
        self.accepting = False
        if getattr(self, "_server", None) is not None:
            self.transport.unserve(self._server)
        self._stop.set()
        self._reload_due.set()
        self.executions.put(None)
        for t in self._threads:
            t.join(timeout=3)
        for driver in self.drivers.values():
            driver.stop()

    def reload_datasources(self) -> None:
        """Run exactly the enabled datasources of the database, as configured there."""
        try:
            wanted = {ds.name: ds for ds in list_datasources(self.sessions)}
        except Exception as exc:  # noqa: BLE001 - keep running what runs; retry later
            LOG.warning("cannot read datasources: %s", exc)
            if self.clock_datasource is not None and CLOCK_DATASOURCE not in self.drivers:
                self._start_driver(self.clock_datasource, {})
            return
        wanted.pop(CLOCK_DATASOURCE, None)  # reserved: the API refuses the name
        if self.clock_datasource is not None:
            wanted[CLOCK_DATASOURCE] = self.clock_datasource
        for name in list(self.drivers):
            ds = wanted.get(name)
            if ds is None or self.definitions.get(name) != _definition(ds):
                self._stop_driver(name, "removed" if ds is None else "reconfigured")
        for name, ds in wanted.items():
            if name in self.drivers:
                continue
            extra = {"persisted": pushed_rows(self.sessions, name)} if ds.driver == "push" \
                else {}
            try:
                self._start_driver(ds, extra)
            except Exception as exc:  # noqa: BLE001 - one bad datasource never stops the rest
                why = str(exc) if isinstance(exc, DriverError) else \
                    f"datasource {name}: cannot start: {type(exc).__name__}: {exc}"
                if self.errors.get(name) != why:
                    LOG.error("%s", why)
                self.errors[name] = why
                if name in self.drivers:
                    self._stop_driver(name, "stopped after failing to start")
                continue
            self.errors.pop(name, None)
            LOG.info("datasource %s (%s) started", ds.name, ds.driver)
        for name in list(self.errors):
            if name not in wanted:
                del self.errors[name]

    def _start_driver(self, ds, extra: dict) -> None:
        driver = make_driver(ds.name, ds.driver, ds.config, self._publisher_for(ds.name),
                             **extra)
        with self.lock:
            self.publisher.add_datasource(ds.name, driver.schema())
            self.drivers[ds.name] = driver
            self.definitions[ds.name] = _definition(ds)
        driver.start()

    def _stop_driver(self, name: str, why: str) -> None:
        with self.lock:
            driver = self.drivers.pop(name)
            self.definitions.pop(name, None)
            self.publisher.remove_datasource(name)
        driver.stop()
        LOG.info("datasource %s %s", name, why)

    def on_datasources_changed(self) -> None:
        self._reload_due.set()

    def _reloader(self) -> None:
        while not self._stop.is_set():
            self._reload_due.wait(DATASOURCE_POLL)
            self._reload_due.clear()
            if not self._stop.is_set():
                self.reload_datasources()

    def _checked(self, name: str, table: str, rows) -> list[tuple]:
        """The rows, checked by the engine's own check (DriverError if bad): what the
        DSD publishes, every PE can apply."""
        if isinstance(rows, list | tuple | set) and len(rows) > self.max_rows:
            raise DriverError(f"datasource {name} table {table}: {len(rows)} rows; the "
                              f"limit is [limits] max_rows_per_table = {self.max_rows}")
        columns = self.publisher.schemas.get(name, {}).get(table)
        try:
            return check_rows(name, table, rows, len(columns) if columns else None)
        except PolicyError as exc:
            raise DriverError(str(exc)) from None

    def _publisher_for(self, name: str):
        def publish(table: str, rows) -> None:
            rows = self._checked(name, table, rows)
            with self.lock:
                if name not in self.publisher.seqs:
                    return  # stopped meanwhile
                delta = self.publisher.replace(name, table, rows)
                count, _ = self.updates.get(name, (0, 0.0))
                self.updates[name] = (count + 1, time.time())
            if delta is None:
                return
            try:
                self.transport.broadcast(TOPIC_TABLES, "table_delta", retry=0,
                                         delta=delta.to_dict())
            except BusError as exc:
                # PEs see the gap in sequence numbers and ask for a snapshot.
                LOG.warning("delta %s#%d not sent: %s", name,
                            delta.seq, exc)
        return publish

    # -- bus events -----------------------------------------------------------

    def on_heartbeat(self, hb: Heartbeat, now: float) -> None:
        if hb.is_pe:
            self._apply(lambda: self.leader.heard(hb.member, hb.incarnation, hb.ready, now))

    def on_goodbye(self, member: str, incarnation: str, now: float) -> None:
        self._apply(lambda: self.leader.goodbye(member, incarnation, now))

    def on_peer_event(self, event: PeerEvent, now: float) -> None:
        pass  # the leader machine keeps its own view of PE contact

    def on_request(self, data: dict[str, Any]) -> None:
        req = Request(action_id=data["action_id"], pe=data["pe"],
                      incarnation=data["incarnation"], datasource=data["datasource"],
                      action=data["action"], args=tuple(data.get("args") or ()))
        now = self.clock()
        self.node.peers.touch(req.pe, req.incarnation, now)
        self._apply(lambda: self.leader.request(req, now))

    def _apply(self, step) -> None:
        with self.lock:
            decision: Decision = step()
        for change in decision.changes:
            LOG.warning("action leader %s -> %s: %s",
                        change.old[0] if change.old else None,
                        change.new[0] if change.new else None, change.reason)
        for text in decision.warnings:
            LOG.warning("%s", text)
        for ex in decision.execute:
            LOG.debug("execute %s (%s)", ex.request.action_id, ex.reason)
            self.executions.put(ex)

    def _ticker(self) -> None:
        # Sleep until the machine's next deadline (a leader's expiry, a shadow
        # entry's grace), capped so that a deadline that appears meanwhile
        # (a new leader) is seen within MAX_SLEEP.
        while not self._stop.is_set():
            with self.lock:
                deadline = self.leader.next_deadline()
            now = self.clock()
            sleep = MAX_SLEEP if deadline is None else min(MAX_SLEEP, max(0.0, deadline - now))
            if self._stop.wait(sleep):
                return
            self._apply(lambda: self.leader.tick(self.clock()))

    # -- execution ------------------------------------------------------------

    def _executor(self) -> None:
        while True:
            ex = self.executions.get()
            if ex is None:
                return
            self._execute(ex)

    def _execute(self, ex: Execute) -> None:
        req = ex.request
        leader = req.pe
        if self.journal is not None:
            try:
                fresh = self.journal.record(req.action_id, req.datasource, req.action,
                                            list(req.args), leader, self.node.member,
                                            ex.reason)
            except StoreError as exc:
                self.failed_actions += 1
                LOG.error("action %s not executed: %s",
                          req.action_id, exc)
                return
            if not fresh:
                self.skipped_by_journal += 1
                LOG.info("action %s already in the journal: not repeated", req.action_id)
                return
        driver = self.drivers.get(req.datasource)
        if driver is None:
            self.failed_actions += 1
            LOG.error("action %s: no datasource %r on this DSD",
                      req.action_id, req.datasource)
            return
        try:
            driver.execute(req.action, list(req.args),
                           {"action_id": req.action_id, "leader": leader,
                            "reason": ex.reason})
            self.executed_total += 1
        except Exception as exc:  # noqa: BLE001 - a driver's failure must not stop others
            self.failed_actions += 1
            LOG.error("action %s %s:%s%s failed: %s", req.action_id,
                      req.datasource, req.action, list(req.args), exc)

    # -- views ----------------------------------------------------------------

    def heartbeat_state(self) -> dict[str, Any]:
        with self.lock:
            return {"seqs": dict(self.publisher.seqs),
                    "leader": self.leader.leader[0] if self.leader.leader else None,
                    "leader_changes": self.leader.counters.leader_changes}

    def ready(self) -> tuple[bool, str]:
        if self.errors:
            return False, "datasource errors: " + "; ".join(self.errors.values())
        return True, f"{len(self.drivers)} datasources running"

    def leader_view(self) -> dict[str, Any]:
        now = self.clock()
        with self.lock:
            lead = self.leader.leader
            return {
                "dsd": self.node.member,
                "incarnation": self.node.incarnation,
                "leader": lead[0] if lead else None,
                "leader_incarnation": lead[1] if lead else None,
                "leader_for": round(now - self.leader.leader_since, 3)
                if self.leader.leader_since is not None else None,
                "counters": vars(self.leader.counters).copy(),
                "executed_total": self.executed_total,
                "skipped_by_journal": self.skipped_by_journal,
                "failed_actions": self.failed_actions,
                "shadow_log": self.leader.shadow_len,
                "history": [{"age": round(now - c.at, 3),
                             "old": c.old[0] if c.old else None,
                             "new": c.new[0] if c.new else None,
                             "reason": c.reason} for c in self.leader.history],
            }

    # -- API requests (over RPC from api-pe processes) ------------------------

    def _driver(self, name: str) -> Driver | None:
        """The running driver of ``name``; reload first if it was just created."""
        if name not in self.drivers:
            self.reload_datasources()
        return self.drivers.get(name)

    def push_rows(self, datasource: str, table: str, rows: list) -> dict[str, Any]:
        driver = self._driver(datasource)
        if driver is None:
            return _error("not_found", f"datasource {datasource!r} does not run on "
                          f"{self.node.member}: {self.errors.get(datasource, 'unknown')}")
        if not isinstance(driver, PushDriver):
            return _error("invalid", f"datasource {datasource} ({type(driver).__name__}) "
                          "does not accept pushed rows; use a datasource of driver 'push'")
        try:
            normalized = self._checked(datasource, table, driver.normalize(table, rows))
        except DriverError as exc:
            return _error("invalid", f"datasource {datasource} table {table}: {exc}")
        # Stored first, so a DSD restarted anywhere publishes the same rows again.
        save_pushed_rows(self.sessions, datasource, table, [list(r) for r in normalized])
        driver.publish(table, normalized)
        return {"ok": True, "rows": len(normalized)}

    def status_of(self, datasource: str) -> dict[str, Any]:
        if self._driver(datasource) is None and datasource not in self.errors:
            return _error("not_found", f"datasource {datasource!r} is not known to the DSD")
        count, when = self.updates.get(datasource, (0, 0.0))
        driver = self.drivers.get(datasource)
        return {"initialized": driver is not None,
                "number_of_updates": count,
                "last_updated": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))
                if when else None,
                "last_error": self.errors.get(datasource) or (driver.last_error if driver
                                                               else None),
                "seq": self.publisher.seqs.get(datasource), "dsd": self.node.member}

    def execute_direct(self, datasource: str, action: str, args: list) -> dict[str, Any]:
        driver = self._driver(datasource)
        if driver is None:
            return _error("not_found", f"datasource {datasource!r} does not run here")
        if driver.actions is not None and action not in driver.actions:
            return _error("invalid", f"datasource {datasource} has no action {action!r}; "
                          f"its actions: {', '.join(driver.actions) or 'none'}")
        try:
            driver.execute(action, list(args), {"action_id": None, "leader": "api",
                                                "reason": "api"})
        except Exception as exc:  # noqa: BLE001 - report the driver's failure
            return _error("invalid", f"{datasource}:{action} failed: {exc}")
        return {"ok": True}

    def refresh(self, datasource: str) -> dict[str, Any]:
        driver = self._driver(datasource)
        if driver is None:
            return _error("not_found", f"datasource {datasource!r} does not run here")
        driver.refresh()
        return {"ok": True}

    def snapshot(self, datasource: str) -> dict[str, Any]:
        with self.lock:
            if datasource not in self.publisher.seqs:
                raise KeyError(datasource)
            return self.publisher.snapshot(datasource).to_dict()


class DsdEndpoint:
    """oslo.messaging endpoint of the ``dsd`` topic."""

    def __init__(self, role: DatasourceRole):
        self.role = role

    def execute_action(self, ctxt, request: dict) -> None:
        self.role.on_request(request)

    def snapshot(self, ctxt, datasource: str) -> dict | None:
        try:
            return self.role.snapshot(datasource)
        except KeyError:
            return None

    def leader_status(self, ctxt) -> dict:
        return self.role.leader_view()

    def push_rows(self, ctxt, datasource: str, table: str, rows: list) -> dict:
        return self.role.push_rows(datasource, table, rows)

    def datasource_status(self, ctxt, datasource: str) -> dict:
        return self.role.status_of(datasource)

    def execute_direct(self, ctxt, datasource: str, action: str, args: list) -> dict:
        return self.role.execute_direct(datasource, action, args)

    def refresh(self, ctxt, datasource: str) -> dict:
        return self.role.refresh(datasource)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": message, "kind": kind}


def _definition(ds) -> tuple[str, str]:
    import json

    return ds.driver, json.dumps(ds.config or {}, sort_keys=True)
