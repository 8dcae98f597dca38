"""The ``clock`` driver: the time that Congress's ``now(x)`` builtin reads.

Congress's ``now`` read each server's own clock while evaluating; replicas
that must agree cannot. Here the DSD (one process) publishes the time as an
ordinary table, ``builtin:now(time)``, one row, ``"YYYY-MM-DD HH:MM:SS"`` in
UTC truncated to ``resolution`` seconds; every PE gets it through the table
sync like any other row, so every PE evaluates ``now`` to the same value.

Config: ``{"resolution": seconds between values (default 1, at least 1)}``.
The DSD always runs one, as the datasource ``builtin`` ([engine]
now_resolution; 0 turns it off), so ``now(x)`` works without setup.
"""

from __future__ import annotations

import math
import time

from congress_ha.datasources.base import Driver, DriverError

FORMAT = "%Y-%m-%d %H:%M:%S"  # Congress's now()


def clock_value(t: float, resolution: float) -> str:
    """The clock row's value at time ``t``: UTC, truncated to ``resolution``."""
    return time.strftime(FORMAT, time.gmtime(math.floor(t / resolution) * resolution))


class ClockDriver(Driver):
    description = "The time, for the now(x) builtin: table now(time), UTC."
    config_help = {"resolution": "seconds between values (default 1, at least 1)"}
    tables = {"now": ["time"]}
    actions: list[str] = []
    polls = True

    def __init__(self, name, config, publish, settings=None, clock=time.time):
        super().__init__(name, config, publish, settings)
        try:
            self.resolution = float(self.config.get("resolution", 1))
        except (TypeError, ValueError):
            raise DriverError(f"datasource {name}: clock config 'resolution' must be a "
                              "number of seconds") from None
        if not self.resolution >= 1:  # also refuses NaN
            raise DriverError(f"datasource {name}: clock 'resolution' must be at least 1 "
                              "second (the value has whole seconds)")
        self.clock = clock
        self.last: str | None = None

    def start(self) -> None:
        self.poll()
        # Checked 4 times a resolution: a new value is published at most a
        # quarter of it late, and only when it changed.
        self._every(self.resolution / 4, self.poll, f"clock-{self.name}")

    def poll(self) -> None:
        value = clock_value(self.clock(), self.resolution)
        if value != self.last:
            self.publish("now", [(value,)])
            self.last = value
