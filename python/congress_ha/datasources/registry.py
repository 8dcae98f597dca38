"""Driver names, as used in ``POST /v1/data-sources`` ``driver``."""

from __future__ import annotations

from typing import Any

from congress_ha.datasources.base import Driver, DriverError, DriverSettings
from congress_ha.datasources.clock import ClockDriver
from congress_ha.datasources.file import FileDriver
from congress_ha.datasources.push import PushDriver
from congress_ha.datasources.ticker import TickerDriver
from congress_ha.errors import InvalidInput, NotFound

DRIVERS: dict[str, type[Driver]] = {
    "clock": ClockDriver,
    "file": FileDriver,
    "push": PushDriver,
    "ticker": TickerDriver,
}


def make_driver(name: str, driver: str, config: dict, publish,
                settings: DriverSettings | None = None) -> Driver:
    """The driver, its config checked against ``config`` and this node's
    ``settings``; it does no I/O until ``start()``."""
    cls = DRIVERS.get(driver)
    if cls is None:
        raise DriverError(f"datasource {name}: unknown driver {driver!r}; known drivers: "
                          f"{', '.join(sorted(DRIVERS))}")
    return cls(name, config, publish, settings=settings)


def validate_config(name: str, driver: str, config: Any,
                    settings: DriverSettings | None = None) -> dict[str, list[str]]:
    """Check a new datasource's config and probe its source (nothing starts):
    InvalidInput if bad.

    Returns the schema it would publish, for the caller to check against the rules.
    """
    if not isinstance(config, dict):
        raise InvalidInput(f"datasource {name}: config must be a JSON object")
    try:
        return make_driver(name, driver, config, lambda *_: None, settings).probe()
    except DriverError as exc:
        raise InvalidInput(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - whatever a driver does with a bad config
        raise InvalidInput(f"datasource {name}: driver {driver!r} refused the config "
                           f"({type(exc).__name__}: {exc})") from None


def driver_info(driver: str, config: dict | None = None,
                settings: DriverSettings | None = None) -> dict[str, Any]:
    """Name, description, tables, actions (None: any) and config keys of a driver."""
    cls = DRIVERS.get(driver)
    if cls is None:
        raise NotFound(f"driver {driver!r} not found")
    tables: dict[str, list[str]] = dict(getattr(cls, "tables", {}) or {})
    if config is not None:
        try:
            tables = make_driver("info", driver, config, lambda *_: None, settings).schema()
        except DriverError:
            pass
    actions = cls.actions
    return {"name": driver, "description": getattr(cls, "description", ""),
            "tables": tables, "actions": None if actions is None else list(actions),
            "config": dict(getattr(cls, "config_help", {}))}
