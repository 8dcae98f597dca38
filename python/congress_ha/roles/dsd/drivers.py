"""Which drivers the DSD runs: exactly the enabled datasources of the database.

A reload (at start, on a ``datasources_changed`` broadcast, every
``DATASOURCE_POLL`` seconds, and when a call names a datasource not running
yet) stops what was removed or reconfigured and starts what is new; one bad
datasource never stops the others, and its error is kept for status and
readiness.  The clock that ``now(x)`` reads runs as the datasource
``builtin``, always, never stored.  Pushed tables are published from the
database (``sync_pushed``): when an API node says it stored one, and every
``PUSH_POLL`` seconds for the pushes made while this DSD or the bus was away.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace

from congress_ha.datasources.base import Driver, DriverError, DriverSettings
from congress_ha.datasources.registry import make_driver
from congress_ha.engine.builtins import CLOCK
from congress_ha.roles.dsd.publish import Publication
from congress_ha.store.datasources import list_datasources, pushed_rows, pushed_versions
from congress_ha.timings import seconds

LOG = logging.getLogger(__name__)
DATASOURCE_POLL = seconds("DATASOURCE_POLL")  # the backstop for a missed datasources_changed
PUSH_POLL = seconds("PUSH_POLL")  # the bound on publishing a push stored while away
CLOCK_DATASOURCE = CLOCK[0]  # "builtin": the clock table builtin:now that now(x) reads


class DriverSet:
    """The running drivers by datasource name, their definitions and their errors."""

    def __init__(self, sessions, publication: Publication, now_resolution: float,
                 driver_settings: DriverSettings | None = None):
        self.sessions = sessions
        # This node's [drivers] options: what the drivers may touch here.
        self.driver_settings = driver_settings or DriverSettings()
        self.publication = publication
        # The clock that now(x) reads: a datasource of our own, never stored.
        self.clock_datasource = SimpleNamespace(
            name=CLOCK_DATASOURCE, driver="clock",
            config={"resolution": max(1.0, now_resolution)}) if now_resolution else None
        self.drivers: dict[str, Driver] = {}
        self.definitions: dict[str, tuple[str, str]] = {}  # name -> (driver, config json)
        self.errors: dict[str, str] = {}
        self._reload = threading.Lock()  # one reload at a time: the bus's, the poll's
        self._pushed = threading.Lock()  # one sync of pushed tables at a time
        self._due = threading.Event()

    def get(self, name: str) -> Driver | None:
        """The running driver of ``name``; reload first if it was just created."""
        if name not in self.drivers:
            self.reload()
        return self.drivers.get(name)

    def reload(self) -> None:
        """Run exactly the enabled datasources of the database, as configured there."""
        with self._reload:
            self._reload_now()

    def _reload_now(self) -> None:
        try:
            wanted = {ds.name: ds for ds in list_datasources(self.sessions)}
        except Exception as exc:  # noqa: BLE001 - keep running what runs; retry later
            LOG.warning("cannot read datasources: %s", exc)
            if self.clock_datasource is not None and CLOCK_DATASOURCE not in self.drivers:
                self._start(self.clock_datasource)
            return
        wanted.pop(CLOCK_DATASOURCE, None)  # reserved: the API refuses the name
        if self.clock_datasource is not None:
            wanted[CLOCK_DATASOURCE] = self.clock_datasource
        for name in list(self.drivers):
            ds = wanted.get(name)
            if ds is None or self.definitions.get(name) != _definition(ds):
                self._stop(name, "removed" if ds is None else "reconfigured")
        for name, ds in wanted.items():
            if name in self.drivers:
                continue
            try:
                self._start(ds)
            except Exception as exc:  # noqa: BLE001 - one bad datasource never stops the rest
                why = str(exc) if isinstance(exc, DriverError) else \
                    f"datasource {name}: cannot start: {type(exc).__name__}: {exc}"
                if self.errors.get(name) != why:
                    LOG.error("%s", why)
                self.errors[name] = why
                if name in self.drivers:
                    self._stop(name, None)  # tried again at the next reload
                continue
            self.errors.pop(name, None)
            LOG.info("datasource %s (%s) started", ds.name, ds.driver)
        for name in list(self.errors):
            if name not in wanted:
                del self.errors[name]

    def _start(self, ds) -> None:
        driver = make_driver(ds.name, ds.driver, ds.config, self.publication.sink(ds.name),
                             self.driver_settings)
        if driver.persists_rows:
            driver.restore(pushed_rows(self.sessions, ds.name))
        self.publication.attach(ds.name, driver)
        self.drivers[ds.name] = driver
        self.definitions[ds.name] = _definition(ds)
        driver.start()
        self.publication.announce(ds.name, driver)

    def _stop(self, name: str, why: str | None) -> None:
        driver = self.drivers.pop(name)
        self.definitions.pop(name, None)
        self.publication.detach(name)
        driver.stop()
        if why:
            LOG.info("datasource %s %s", name, why)

    def stop_all(self) -> None:
        for driver in list(self.drivers.values()):
            driver.stop()

    # -- the reload thread ----------------------------------------------------

    def on_datasources_changed(self) -> None:
        """A bus event (and the way to wake the reload thread)."""
        self._due.set()

    def reloader(self, stopping, clock=time.monotonic) -> None:
        """The loop of the reload thread, until ``stopping()``: datasources when
        due (or every DATASOURCE_POLL), pushed tables every PUSH_POLL."""
        next_reload = clock() + DATASOURCE_POLL
        while not stopping():
            due = self._due.wait(PUSH_POLL)
            if stopping():
                return
            if due or clock() >= next_reload:
                self._due.clear()
                next_reload = clock() + DATASOURCE_POLL
                self.reload()
            self.sync_pushed()

    # -- pushed tables ----------------------------------------------------------

    def sync_pushed(self, only: str | None = None) -> int:
        """Publish every pushed table (of datasource ``only``) whose stored version
        is ahead of the one published; how many were published."""
        with self._pushed:
            try:
                versions = pushed_versions(self.sessions)
            except Exception as exc:  # noqa: BLE001 - the database is away: next poll
                LOG.warning("cannot read the pushed tables' versions: %s", exc)
                return 0
            published = 0
            names = {ds for ds, _ in versions if only in (None, ds)}
            for name in sorted(names):
                driver = self.drivers.get(name)
                if driver is None or not driver.persists_rows:
                    continue
                behind = [t for (ds, t), v in versions.items()
                          if ds == name and v > driver.versions.get(t, 0)]
                if not behind:
                    continue
                try:
                    stored = pushed_rows(self.sessions, name)
                except Exception as exc:  # noqa: BLE001 - next poll
                    LOG.warning("cannot read the pushed rows of %s: %s", name, exc)
                    continue
                for table in behind:
                    rows, version = stored.get(table, ([], 0))
                    try:
                        published += driver.publish_stored(table, rows, version)
                    except DriverError as exc:
                        # Checked by the API before it stored them: a row only
                        # a newer release's API accepts.
                        LOG.error("datasource %s table %s: stored rows not published: "
                                  "%s", name, table, exc)
                        driver.versions[table] = version
            return published


def _definition(ds) -> tuple[str, str]:
    return ds.driver, json.dumps(ds.config or {}, sort_keys=True)
