"""Driver names, as used in ``POST /v1/data-sources`` ``driver``."""

from __future__ import annotations

from congress_ha.datasources.base import Driver, DriverError
from congress_ha.datasources.file import FileDriver
from congress_ha.datasources.ticker import TickerDriver

DRIVERS: dict[str, type[Driver]] = {
    "file": FileDriver,
    "ticker": TickerDriver,
}


def make_driver(name: str, driver: str, config: dict, publish) -> Driver:
    cls = DRIVERS.get(driver)
    if cls is None:
        raise DriverError(f"datasource {name}: unknown driver {driver!r}; known drivers: "
                          f"{', '.join(sorted(DRIVERS))}")
    return cls(name, config, publish)
