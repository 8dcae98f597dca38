"""The ``ticker`` driver: a steady stream of rows, for demos and benchmarks.

Config: ``{"rate": ticks per second (default 20), "window": rows kept (50)}``.
Table ``tick(n)`` holds the last ``window`` tick numbers; each tick adds one
row and drops the oldest, so a policy ``execute[out:log(n)] :- ticks:tick(n)``
derives one action per tick.  Tick numbers come from the wall clock
(``time * rate``), so a DSD restarted on another node continues the series
instead of repeating numbers that already led to actions.
"""

from __future__ import annotations

import time

from congress_ha.datasources.base import Driver, DriverError


class TickerDriver(Driver):
    description = "A steady stream of rows tick(n), for demos and benchmarks."
    config_help = {"rate": "ticks per second (default 20)", "window": "rows kept (50)"}
    tables = {"tick": ["n"]}
    actions: list[str] = []

    def __init__(self, name, config, publish, settings=None):
        super().__init__(name, config, publish, settings)
        try:
            self.rate = float(self.config.get("rate", 20))
            self.window = int(self.config.get("window", 50))
        except (TypeError, ValueError):
            raise DriverError(f"datasource {name}: ticker config 'rate' and 'window' must "
                              "be numbers") from None
        if self.rate <= 0 or self.window < 1:
            raise DriverError(f"datasource {name}: ticker needs rate > 0 and window >= 1")

    def start(self) -> None:
        self._every(1.0 / self.rate, self._tick, f"ticker-{self.name}")

    def _tick(self) -> None:
        n = int(time.time() * self.rate)
        self.publish("tick", [(i,) for i in range(n - self.window + 1, n + 1)])
