"""What a datasource driver is.

A driver declares its tables (with column names), its actions and its
capabilities, produces table contents through ``publish(table, rows)`` (each
call gives the table's full new content; the DSD computes the delta), and
executes actions.  The DSD asks a driver only for what its capabilities say
it does, never by its name or class (docs/drivers.md has the table).

Its life: the constructor parses and checks the config and does no I/O (API
nodes build drivers to check a new datasource's config); ``probe()`` looks at
the source once, for that same check; ``start()`` does the first I/O and
publishes; ``poll()`` re-reads; ``stop()`` ends it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from congress_ha.config import OPTIONS

LOG = logging.getLogger(__name__)


def _default(name: str) -> Any:
    return next(o.default for o in OPTIONS if o.group == "drivers" and o.name == name)

Publish = Callable[[str, list[tuple]], None]


class DriverError(Exception):
    """A driver's configuration or action failed; the message is for operators."""


@dataclass(frozen=True)
class DriverSettings:
    """The ``[drivers]`` options of this node's config (config.py), as drivers read
    them; an API node and the DSD node each have their own."""

    file_allowed_dirs: tuple[str, ...] = _default("file_allowed_dirs")

    @classmethod
    def of(cls, settings: Any) -> DriverSettings:
        """From a loaded config (``config.Settings``); the defaults where it has none."""
        group = getattr(settings, "drivers", None) if settings is not None else None
        dirs = getattr(group, "file_allowed_dirs", None) if group is not None else None
        return cls(file_allowed_dirs=tuple(dirs)) if dirs else cls()


@dataclass(frozen=True)
class ActionContext:
    """Who asked for an execution: ``action_id`` and ``leader`` are None and "api"
    for ``POST .../actions`` (executed directly, not through the leader)."""

    action_id: str | None
    leader: str
    reason: str         # leader, replay, grace or api


class Driver:
    #: table name -> column names
    tables: dict[str, list[str]] = {}
    #: action names; None means the driver accepts any action name
    actions: list[str] | None = []
    # Capabilities: what the DSD may ask of the driver.
    #: poll() re-reads the source: on the driver's own timer and on request-refresh
    polls: bool = False
    #: normalize(table, rows) takes rows pushed through the API (PUT .../rows)
    accepts_push: bool = False
    #: the DSD stores pushed rows and gives them back through restore() before start()
    persists_rows: bool = False
    description: str = ""
    #: config key -> help text
    config_help: dict[str, str] = {}
    last_error: str | None = None

    def __init__(self, name: str, config: dict[str, Any], publish: Publish,
                 settings: DriverSettings | None = None):
        """Parse and check ``config`` (DriverError for people if bad); no I/O.

        ``settings``: what this node's own configuration says about drivers."""
        self.name = name
        self.settings = settings or DriverSettings()
        self.config = dict(config or {})
        self.publish = publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def schema(self) -> dict[str, list[str]]:
        return {t: list(cols) for t, cols in self.tables.items()}

    def probe(self) -> dict[str, list[str]]:
        """Look at the source once without starting: the tables it would publish, or
        DriverError saying why it cannot. The API runs it on a new datasource."""
        return self.schema()

    def start(self) -> None:
        """The first I/O: publish the initial content; start polling if the driver polls."""

    def poll(self) -> None:
        """Re-read the source and publish it (drivers that poll)."""

    def normalize(self, table: str, rows: Any) -> list[tuple]:
        """Pushed rows as tuples in column order (drivers that accept pushes)."""
        raise DriverError(f"datasource {self.name} does not accept pushed rows")

    def restore(self, rows: dict[str, list]) -> None:
        """The rows stored for each table (drivers that persist rows), before start()."""

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def execute(self, action: str, args: list, context: ActionContext) -> None:
        raise DriverError(f"datasource {self.name}: driver has no action {action!r}")

    def refresh(self) -> None:
        """Re-read the source now (request-refresh): a no-op unless the driver polls."""
        if self.polls:
            self.poll()

    def _every(self, interval: float, fn: Callable[[], None], name: str) -> None:
        def loop():
            while not self._stop.wait(interval):
                try:
                    fn()
                except Exception as exc:  # noqa: BLE001 - one bad round must not end polling
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    LOG.exception("datasource %s: %s failed; polling goes on", self.name, name)
        self._thread = threading.Thread(target=loop, name=name, daemon=True)
        self._thread.start()
