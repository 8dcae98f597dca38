"""What the REST API may ask of an api-pe process: one facade over the roles.

Policies and rules go through the policy manager (validated by the local
engine, written under the revision guard, then broadcast); tables and rows
come from the local PE's replica; anything that needs the DSD (pushing rows,
status, running an action, refresh) is an RPC with a timeout.  Every failure
is a ``congress_ha.errors`` exception whose message is meant for people.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from congress_ha.config import limit
from congress_ha.datasources.base import DriverError, DriverSettings
from congress_ha.datasources.push import PushDriver, normalize_rows
from congress_ha.datasources.registry import DRIVERS, driver_info, validate_config
from congress_ha.engine import PolicyError
from congress_ha.engine.builtins import CLOCK
from congress_ha.engine.engine import check_rows
from congress_ha.errors import AlreadyExists, InvalidInput, NotFound, TooLarge, Unavailable
from congress_ha.store import datasources as ds_store
from congress_ha.store.db import StoreError
from congress_ha.store.models import Datasource
from congress_ha.timings import seconds

DATASOURCE_CACHE = seconds("DATASOURCE_CACHE")  # how old a datasource list may be served


@dataclass
class DatasourceRecord:
    id: str
    name: str
    driver: str
    config: dict
    description: str
    enabled: bool


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _record(ds: Datasource) -> DatasourceRecord:
    return DatasourceRecord(ds.id, ds.name, ds.driver, dict(ds.config or {}),
                            ds.description or "", bool(ds.enabled))


class Service:
    def __init__(self, pe, policies, sessions, dsd_client, status_fn, settings=None,
                 ready_fn=None):
        self.pe = pe                  # roles.policy_engine.PolicyEngineRole
        self.policies = policies      # roles.policies.PolicyManager
        self.sessions = sessions
        self.dsd = dsd_client         # roles.dsd_client.DsdClient
        self.status_fn = status_fn
        # health at depth 20: the bus works, the policies and every snapshot held
        self.ready_fn = ready_fn or (lambda: {"ok": False, "reason": "no readiness check"})
        self._cached: list[DatasourceRecord] = []
        self._cached_at = 0.0
        self.max_rows = limit(settings, "max_rows_per_table")
        # This node's [drivers] options: a new datasource is checked against them
        # here; the DSD checks it again against its own, and decides.
        self.driver_settings = DriverSettings.of(settings)

    # -- policies (delegated; see roles/policies.py) --------------------------

    def list_policies(self):
        return self.policies.list_policies()

    def get_policy(self, ident: str):
        return self.policies.get_policy(ident)

    def create_policy(self, name: str, abbreviation: str = "", description: str = "",
                      kind: str = "nonrecursive", rules=()):
        return self.policies.create_policy(name, abbreviation, description, kind, rules)

    def delete_policy(self, ident: str):
        return self.policies.delete_policy(ident)

    def add_rule(self, policy: str, text: str, name: str = "", comment: str = ""):
        return self.policies.add_rule(policy, text, name, comment)

    def delete_rule(self, policy: str, rule_id: str):
        return self.policies.delete_rule(policy, rule_id)

    def get_rule(self, policy: str, rule_id: str):
        return self.policies.get_rule(policy, rule_id)

    def policy_tables(self, policy: str) -> list[str]:
        return self.policies.tables(policy)

    def policy_rows(self, policy: str, table: str) -> set[tuple]:
        return self.policies.rows(policy, table)

    def policy_trace(self, policy: str, table: str) -> tuple[set[tuple], list[str]]:
        return self.policies.trace(policy, table)

    def simulate(self, policy: str, query: str, sequence: str,
                 action_policy: str | None = None) -> set[tuple]:
        return self.policies.simulate(policy, query, sequence, action_policy)

    # -- library policies -----------------------------------------------------

    def list_library(self):
        return self.policies.store.library()

    def get_library(self, ident: str):
        return self.policies.library_get(ident)

    def create_library(self, name: str, abbreviation: str = "", description: str = "",
                       kind: str = "nonrecursive", rules: list[dict] = ()):
        return self.policies.library_put(name, abbreviation, description, kind, list(rules))

    def update_library(self, ident: str, name: str, abbreviation: str = "",
                       description: str = "", kind: str = "nonrecursive",
                       rules: list[dict] = ()):
        return self.policies.library_put(name, abbreviation, description, kind, list(rules),
                                         ident=ident)

    def delete_library(self, ident: str):
        return self.policies.library_delete(ident)

    # -- datasources ----------------------------------------------------------

    def list_datasources(self) -> list[DatasourceRecord]:
        return [_record(d) for d in ds_store.list_datasources(self.sessions,
                                                              enabled_only=False)]

    def get_datasource(self, ident: str) -> DatasourceRecord:
        # Reads of rows are the hot path: a database round trip per request
        # halved their throughput. Records are cached for DATASOURCE_CACHE
        # seconds (another node's create or delete shows within that), and
        # refreshed at once on a miss or on this node's own changes.
        now = time.monotonic()
        if now - self._cached_at > DATASOURCE_CACHE or not any(
                ident in (d.id, d.name) for d in self._cached):
            try:
                self._cached, self._cached_at = self.list_datasources(), now
            except SQLAlchemyError:
                # The database is away: reads go on from the list last read
                # (a write fails on its own, as unavailable).
                if not any(ident in (d.id, d.name) for d in self._cached):
                    raise
        for d in self._cached:
            if ident in (d.id, d.name):
                return d
        raise NotFound(f"datasource {ident!r} not found")

    def create_datasource(self, name: str, driver: str, config: dict | None,
                          description: str = "", enabled: bool = True) -> DatasourceRecord:
        if not isinstance(name, str) or not name or not name.replace("_", "a").isalnum():
            raise InvalidInput(f"datasource name {name!r}: use letters, digits and _ "
                               "(it is used in policy rules as NAME:table)")
        if name == CLOCK[0]:
            raise InvalidInput(f"datasource name {name!r} is reserved: it holds the clock "
                               "that now(x) reads (builtin:now); choose another name")
        schema = validate_config(name, driver, config or {},  # raises InvalidInput
                                 self.driver_settings)
        self.policies.check_schema(name, schema)  # against the rules that use it
        if any(d.name == name for d in self.list_datasources()):
            raise AlreadyExists(f"datasource {name!r} already exists")
        try:
            ds = ds_store.add_datasource(self.sessions, name, driver, config or {},
                                         description or "", enabled)
        except StoreError as exc:
            raise Unavailable(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a racing create of the same name
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise AlreadyExists(f"datasource {name!r} already exists") from None
            raise
        self._cached_at = 0.0
        self.dsd.datasources_changed()
        return _record(ds)

    def delete_datasource(self, ident: str) -> DatasourceRecord:
        record = self.get_datasource(ident)
        ds_store.delete_datasource(self.sessions, record.id)
        self._cached_at = 0.0
        self.dsd.datasources_changed()
        return record

    def datasource_schema(self, ident: str) -> dict[str, list[str]]:
        record = self.get_datasource(ident)
        with self.policies.serving():
            schema = self.pe.schema(record.name)
        if schema is None:
            # not published yet (DSD starting): the driver class knows its tables
            schema = driver_info(record.driver, record.config,
                                 self.driver_settings)["tables"]
        return schema

    def datasource_tables(self, ident: str) -> list[str]:
        return sorted(self.datasource_schema(ident))

    def datasource_rows(self, ident: str, table: str) -> set[tuple]:
        record = self.get_datasource(ident)
        if table not in self.datasource_schema(ident):
            raise NotFound(f"datasource {record.name} has no table {table!r}")
        with self.policies.serving():
            return self.pe.rows(record.name, table)

    def push_rows(self, ident: str, table: str, rows: list) -> None:
        """Check the rows as the DSD will, store them, then ask the DSD to publish.

        Stored is accepted: the push needs this node and the database, not the
        broker or a DSD (one that is away publishes it within PUSH_POLL of
        being back)."""
        if isinstance(rows, list) and len(rows) > self.max_rows:
            raise TooLarge(f"{len(rows)} rows in one push; the limit is [limits] "
                           f"max_rows_per_table = {self.max_rows}")
        record = self.get_datasource(ident)
        checked = self._checked_push(record, table, rows)
        try:
            ds_store.save_pushed_rows(self.sessions, record.name, table,
                                      [list(r) for r in checked], datasource_id=record.id)
        except ds_store.NoSuchDatasource:
            self._cached_at = 0.0
            raise NotFound(f"datasource {record.name!r} not found (deleted)") from None
        except (StoreError, SQLAlchemyError) as exc:
            raise Unavailable(f"the push was not stored: {_first_line(exc)}") from None
        if getattr(self.pe, "dsd", True) is not None:
            # A DSD is heard: have it publish now. None is (a failover): its
            # successor publishes what is stored when it starts.
            self.dsd.push_stored(record.name, table)

    def _checked_push(self, record: DatasourceRecord, table: str, rows) -> list[tuple]:
        """The rows in column order, checked by the engine's own row check."""
        driver = DRIVERS.get(record.driver)
        if not (isinstance(driver, type) and issubclass(driver, PushDriver)):
            raise InvalidInput(f"datasource {record.name} ({record.driver}) does not accept "
                               "pushed rows; use a datasource of driver 'push'")
        try:
            tables = PushDriver.parse_tables(record.name, record.config)
            normalized = normalize_rows(record.name, tables, table, rows)
            return check_rows(record.name, table, normalized, len(tables[table]))
        except (DriverError, PolicyError) as exc:
            raise InvalidInput(f"datasource {record.name} table {table}: {exc}") from None

    def datasource_status(self, ident: str) -> dict[str, Any]:
        record = self.get_datasource(ident)
        return self.dsd.status(record.name)

    def datasource_actions(self, ident: str) -> list[str] | None:
        record = self.get_datasource(ident)
        return driver_info(record.driver, record.config, self.driver_settings)["actions"]

    def execute_datasource_action(self, ident: str, action: str, args: list) -> None:
        record = self.get_datasource(ident)
        self.dsd.execute(record.name, action, list(args))

    def request_refresh(self, ident: str) -> None:
        record = self.get_datasource(ident)
        self.dsd.refresh(record.name)

    def drivers(self) -> list[dict[str, Any]]:
        return [driver_info(name) for name in sorted(DRIVERS)]

    def driver(self, name: str) -> dict[str, Any]:
        if name not in DRIVERS:
            raise NotFound(f"driver {name!r} not found; known drivers: "
                           f"{', '.join(sorted(DRIVERS))}")
        return driver_info(name)

    def ha_status(self) -> dict[str, Any]:
        return self.status_fn()

    def ready(self) -> bool:
        return bool(self.ready_fn().get("ok"))
