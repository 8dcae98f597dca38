"""The datasource-driver (DSD) role: drivers, table publication, actions.

It runs every enabled datasource of the database (``dsd/drivers.py``),
publishes their table deltas with sequence numbers and answers snapshot calls
(``dsd/publish.py``), feeds action requests to the local leader state machine
and runs what it decides, journaled first (``dsd/actions.py``), and answers the
``dsd`` topic (``dsd/endpoint.py``).  This class puts the four together.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from congress_ha.bus.contract import TOPIC_DSD, Endpoint
from congress_ha.bus.node import BusNode
from congress_ha.bus.transport import Transport
from congress_ha.bus.wire import dump
from congress_ha.config import limit
from congress_ha.datasources.base import DriverSettings
from congress_ha.metrics import DsdView
from congress_ha.roles.dsd.actions import ActionRunner
from congress_ha.roles.dsd.drivers import DriverSet
from congress_ha.roles.dsd.endpoint import DsdHandler
from congress_ha.roles.dsd.publish import Publication
from congress_ha.store.journal import Journal
from congress_ha.threads import Supervised


class DatasourceRole:
    """The DSD of one process: its parts, their threads, and the views server.py shows."""

    def __init__(self, settings, node: BusNode, transport: Transport, sessions,
                 clock=time.monotonic):
        self.node = node
        self.transport = transport
        self.publication = Publication(transport, node.incarnation,
                                       limit(settings, "max_rows_per_table"))
        resolution = getattr(getattr(settings, "engine", None), "now_resolution", 1.0)
        self.drivers = DriverSet(sessions, self.publication, resolution,
                                 DriverSettings.of(settings))
        journal = Journal(sessions) if settings.ha.action_journal else None
        self.actions = ActionRunner(settings.ha, node, self.drivers, journal, clock)
        self.handler = DsdHandler(node.member, sessions, self.drivers, self.publication,
                                  self.actions)
        self._server = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------

    def prepare(self) -> None:
        """What needs no bus: read the journal (runs while the node joins)."""
        self.actions.load_journal()

    def start(self) -> None:
        self.drivers.reload()
        # On the bus thread: leader decisions at once.
        for listener in (self.actions, self.drivers):
            self.node.add_listener(listener)
        self._server = self.transport.serve(TOPIC_DSD, self.node.member,
                                            Endpoint(TOPIC_DSD, self.handler,
                                                     self.transport.sealer))
        for target, name in ((self.actions.executor, "executor"),
                             (lambda: self.actions.ticker(self._stop), "leader-tick"),
                             (lambda: self.drivers.reloader(self._stop.is_set),
                              "datasource-reload")):
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
        if self._server is not None:
            self.transport.unserve(self._server)
        self._stop.set()
        self.actions.stopping.set()  # an executor waiting for the journal gives up
        self.drivers.on_datasources_changed()  # wakes the reload thread to end
        self.actions.executions.put(None)
        for t in self._threads:
            t.join(timeout=3)
        self.drivers.stop_all()

    def reload_datasources(self) -> None:
        self.drivers.reload()

    # -- views ----------------------------------------------------------------

    @property
    def errors(self) -> dict[str, str]:
        return self.drivers.errors

    def heartbeat_state(self) -> dict[str, Any]:
        leader, changes = self.actions.current_leader()
        return {"seqs": self.publication.seqs(), "leader": leader, "leader_changes": changes}

    def ready(self) -> tuple[bool, str]:
        if self.drivers.errors:
            return False, "datasource errors: " + "; ".join(self.drivers.errors.values())
        return True, f"{len(self.drivers.drivers)} datasources running"

    def journal_waiting(self) -> float | None:
        """Seconds the executor has waited for the journal's database (None: not)."""
        since = self.actions.journal_blocked_since
        return None if since is None else round(self.actions.clock() - since, 3)

    def metrics_view(self) -> DsdView:
        return self.actions.metrics_view(self.publication.seqs())

    def leader_view(self) -> dict[str, Any]:
        return dump(self.actions.status())

