"""The ``dsd`` topic's methods (bus/contract.py), as the DSD answers them.

Each takes its request dataclass, already parsed and checked by the
contract's ``Endpoint``, and returns its reply dataclass or an ``Error``.
"""

from __future__ import annotations

import time

from congress_ha.bus.messages import (
    ActionRequest,
    DatasourceStatus,
    DatasourceStatusRequest,
    Done,
    Error,
    ExecuteDirect,
    LeaderStatus,
    LeaderStatusRequest,
    Pushed,
    PushRows,
    PushStored,
    RefreshRequest,
    Snapshot,
    SnapshotRequest,
)
from congress_ha.datasources.base import ActionContext, DriverError
from congress_ha.roles.dsd.actions import ActionRunner
from congress_ha.roles.dsd.drivers import DriverSet
from congress_ha.roles.dsd.publish import Publication
from congress_ha.store.datasources import save_pushed_rows


class DsdHandler:
    """One method per ``dsd`` method of the contract; ``contract.Endpoint`` calls them."""

    def __init__(self, member: str, sessions, drivers: DriverSet, publication: Publication,
                 actions: ActionRunner):
        self.member = member
        self.sessions = sessions
        self.drivers = drivers
        self.publication = publication
        self.actions = actions

    def execute_action(self, request: ActionRequest) -> None:
        self.actions.on_request(request)

    def snapshot(self, request: SnapshotRequest) -> Snapshot | None:
        return self.publication.snapshot(request.datasource)

    def leader_status(self, request: LeaderStatusRequest) -> LeaderStatus:
        return self.actions.status()

    def push_stored(self, request: PushStored) -> Pushed | Error:
        """An API node stored a push: publish the stored rows, if newer than ours."""
        driver = self._push_driver(request.datasource)
        if isinstance(driver, Error):
            return driver
        self.drivers.sync_pushed(request.datasource)
        return Pushed(ok=True, rows=self.publication.row_count(request.datasource,
                                                               request.table))

    def push_rows(self, request: PushRows) -> Pushed | Error:
        """A push from an API node of release 0.1: checked and stored here."""
        name, table = request.datasource, request.table
        driver = self._push_driver(name)
        if isinstance(driver, Error):
            return driver
        try:
            rows = self.publication.checked(name, table, driver.normalize(table, request.rows))
        except DriverError as exc:
            return Error(f"datasource {name} table {table}: {exc}", "invalid")
        if not driver.persists_rows:
            driver.publish(table, rows)
            return Pushed(ok=True, rows=len(rows))
        # Stored first, so a DSD restarted anywhere publishes the same rows again.
        save_pushed_rows(self.sessions, name, table, [list(r) for r in rows])
        self.drivers.sync_pushed(name)
        return Pushed(ok=True, rows=len(rows))

    def _push_driver(self, name: str):
        driver = self.drivers.get(name)
        if driver is None:
            return Error(f"datasource {name!r} does not run on {self.member}: "
                         f"{self.drivers.errors.get(name, 'unknown')}", "not_found")
        if not driver.accepts_push:
            return Error(f"datasource {name} ({type(driver).__name__}) does not accept "
                         "pushed rows; use a datasource of driver 'push'", "invalid")
        return driver

    def datasource_status(self, request: DatasourceStatusRequest) -> DatasourceStatus | Error:
        name = request.datasource
        driver = self.drivers.get(name)
        if driver is None and name not in self.drivers.errors:
            return Error(f"datasource {name!r} is not known to the DSD", "not_found")
        count, when = self.publication.updated(name)
        return DatasourceStatus(
            initialized=driver is not None,
            number_of_updates=count,
            last_updated=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))
            if when else None,
            last_error=self.drivers.errors.get(name) or (driver.last_error if driver
                                                         else None),
            seq=self.publication.seqs().get(name), dsd=self.member)

    def execute_direct(self, request: ExecuteDirect) -> Done | Error:
        name, action = request.datasource, request.action
        driver = self.drivers.get(name)
        if driver is None:
            return Error(f"datasource {name!r} does not run here", "not_found")
        if driver.actions is not None and action not in driver.actions:
            return Error(f"datasource {name} has no action {action!r}; its actions: "
                         f"{', '.join(driver.actions) or 'none'}", "invalid")
        try:
            driver.execute(action, list(request.args), ActionContext(None, "api", "api"))
        except Exception as exc:  # noqa: BLE001 - report the driver's failure
            return Error(f"{name}:{action} failed: {exc}", "invalid")
        return Done()

    def refresh(self, request: RefreshRequest) -> Done | Error:
        driver = self.drivers.get(request.datasource)
        if driver is None:
            return Error(f"datasource {request.datasource!r} does not run here", "not_found")
        driver.refresh()
        return Done()
