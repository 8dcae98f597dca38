"""What a datasource driver is.

A driver declares its tables (with column names) and its actions, produces
table contents through ``publish(table, rows)`` (each call gives the table's
full new content; the DSD computes the delta), and executes actions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)
Publish = Callable[[str, list[tuple]], None]


class DriverError(Exception):
    """A driver's configuration or action failed; the message is for operators."""


class Driver:
    #: table name -> column names
    tables: dict[str, list[str]] = {}
    #: action names; None means the driver accepts any action name
    actions: list[str] | None = []
    description: str = ""
    #: config key -> help text
    config_help: dict[str, str] = {}
    last_error: str | None = None

    def __init__(self, name: str, config: dict[str, Any], publish: Publish):
        self.name = name
        self.config = dict(config or {})
        self.publish = publish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def schema(self) -> dict[str, list[str]]:
        return {t: list(cols) for t, cols in self.tables.items()}

    def start(self) -> None:
        """Publish the initial content; start polling if the driver polls."""

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def execute(self, action: str, args: list, context: dict[str, Any]) -> None:
        raise DriverError(f"datasource {self.name}: driver has no action {action!r}")

    def refresh(self) -> None:
        """Re-read the source now (request-refresh); polling drivers override."""
        poll = getattr(self, "poll", None)
        if poll is not None:
            poll()

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
