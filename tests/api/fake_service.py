"""An in-process stand-in for roles.service.Service, for the API's unit tests.

Same method names, return types and errors as the real facade; policies run on
the real (pure) engine so rule errors are the engine's own; datasources, the
DSD and the database are dicts.  ``fail_next`` makes the next call raise, to
test the 503 and 500 paths.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from congress_ha.engine import Engine, PolicyError
from congress_ha.errors import AlreadyExists, InvalidInput, NotFound, ServiceError
from congress_ha.roles.service import DatasourceRecord
from congress_ha.store.policies import PolicyRecord, RuleRecord

DRIVERS = {
    "push": {"name": "push", "description": "rows pushed through the API",
             "tables": {}, "actions": [], "config": {"tables": "table -> columns"}},
    "file": {"name": "file", "description": "rows from a file; any action is logged",
             "tables": {"rows": ["a", "b"]}, "actions": None,
             "config": {"path": "file or folder", "action_log": "JSON lines file"}},
}


@dataclass
class Lib:
    id: str
    name: str
    abbreviation: str
    description: str
    kind: str
    rules: list[dict] = field(default_factory=list)


class FakeService:
    def __init__(self) -> None:
        self.engine = Engine()
        self.policies: dict[str, PolicyRecord] = {}
        self.library: dict[str, Lib] = {}
        self.datasources: dict[str, DatasourceRecord] = {}
        self.schemas: dict[str, dict[str, list[str]]] = {}
        self.executed: list[tuple[str, str, list]] = []
        self.refreshed: list[str] = []
        self.pushed: list[tuple[str, str, list]] = []
        self.rows: dict[tuple[str, str], set[tuple]] = {}
        self.fail: ServiceError | Exception | None = None
        for name, kind in (("classification", "nonrecursive"), ("action", "action")):
            self.create_policy(name, kind=kind)

    def fail_next(self, exc: Exception) -> None:
        self.fail = exc

    def _check_fail(self) -> None:
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc

    # -- policies -------------------------------------------------------------

    def list_policies(self):
        self._check_fail()
        return list(self.policies.values())

    def get_policy(self, ident: str):
        self._check_fail()
        for rec in self.policies.values():
            if ident in (rec.id, rec.name):
                return rec
        raise NotFound(f"policy {ident!r} not found")

    def create_policy(self, name, abbreviation="", description="", kind="nonrecursive",
                      rules=()):
        self._check_fail()
        if not name.replace("_", "a").replace("-", "a").isalnum():
            raise InvalidInput(f"policy name {name!r}: use letters, digits, _ and -")
        if name in self.policies:
            raise AlreadyExists(f"policy {name!r} already exists")
        scratch = Engine()
        for ds, tables in self.schemas.items():
            scratch.set_schema(ds, tables)
        scratch.create_policy(name, "recursive" if kind == "recursive" else
                              "action" if kind == "action" else "nonrecursive")
        for text, _, _ in rules:
            try:
                scratch.insert_rule(name, text)
            except PolicyError as exc:
                raise InvalidInput(str(exc)) from None
        rec = PolicyRecord(str(uuid.uuid4()), name, abbreviation, description, "user", kind)
        self.engine.create_policy(name, "recursive" if kind == "recursive" else
                                  "action" if kind == "action" else "nonrecursive")
        self.policies[name] = rec
        for text, rname, comment in rules:
            rid = str(uuid.uuid4())
            self.engine.insert_rule(name, text, rule_id=rid)
            rec.rules.append(RuleRecord(rid, text, rname, comment))
        return rec

    def delete_policy(self, ident):
        rec = self.get_policy(ident)
        if rec.name in ("classification", "action"):
            raise InvalidInput(f"policy {rec.name!r} is a default policy")
        self.engine.delete_policy(rec.name)
        del self.policies[rec.name]
        return rec

    def add_rule(self, policy, text, name="", comment=""):
        rec = self.get_policy(policy)
        rid = str(uuid.uuid4())
        try:
            self.engine.insert_rule(rec.name, text, rule_id=rid)
        except PolicyError as exc:
            raise InvalidInput(str(exc)) from None
        rule = RuleRecord(rid, text, name, comment)
        rec.rules.append(rule)
        return rule

    def get_rule(self, policy, rule_id):
        for rule in self.get_policy(policy).rules:
            if rule_id in (rule.id, rule.name):
                return rule
        raise NotFound(f"rule {rule_id!r} not found in policy {policy!r}")

    def delete_rule(self, policy, rule_id):
        rec = self.get_policy(policy)
        rule = self.get_rule(policy, rule_id)
        self.engine.delete_rule(rec.name, rule.id)
        rec.rules.remove(rule)
        return rule

    def policy_tables(self, policy):
        return self.engine.tables(self.get_policy(policy).name)

    def policy_rows(self, policy, table):
        name = self.get_policy(policy).name
        if table not in self.engine.tables(name):
            raise NotFound(f"policy {name!r} has no table {table!r}")
        return self.engine.select(name, table)

    def policy_trace(self, policy, table):
        name = self.get_policy(policy).name
        if table not in self.engine.tables(name):
            raise NotFound(f"policy {name!r} has no table {table!r}")
        return self.engine.trace(name, table)

    def simulate(self, policy, query, sequence, action_policy=None):
        name = self.get_policy(policy).name
        action = self.get_policy(action_policy).name if action_policy else None
        try:
            return self.engine.simulate(name, query, sequence, action)
        except PolicyError as exc:
            raise InvalidInput(str(exc)) from None

    # -- library --------------------------------------------------------------

    def list_library(self):
        self._check_fail()
        return sorted(self.library.values(), key=lambda lib: lib.name)

    def get_library(self, ident):
        for lib in self.library.values():
            if ident in (lib.id, lib.name):
                return lib
        raise NotFound(f"library policy {ident!r} not found")

    def create_library(self, name, abbreviation="", description="", kind="nonrecursive",
                       rules=()):
        return self._library_put(name, abbreviation, description, kind, list(rules))

    def update_library(self, ident, name, abbreviation="", description="",
                       kind="nonrecursive", rules=()):
        return self._library_put(name, abbreviation, description, kind, list(rules),
                                 ident=ident)

    def _library_put(self, name, abbreviation, description, kind, rules, ident=None):
        scratch = Engine()
        scratch.create_policy("lib", "recursive" if kind == "recursive" else "nonrecursive")
        for r in rules:
            try:
                scratch.insert_rule("lib", r["rule"])
            except PolicyError as exc:
                raise InvalidInput(str(exc)) from None
        if ident is not None and ident not in self.library:
            raise NotFound(f"library policy {ident!r} not found")
        if any(lib.name == name and lib.id != ident for lib in self.library.values()):
            raise AlreadyExists(f"library policy {name!r} already exists")
        lib = Lib(ident or str(uuid.uuid4()), name, abbreviation, description, kind, rules)
        self.library[lib.id] = lib
        return lib

    def delete_library(self, ident):
        lib = self.get_library(ident)
        del self.library[lib.id]
        return lib

    # -- datasources ----------------------------------------------------------

    def list_datasources(self):
        self._check_fail()
        return list(self.datasources.values())

    def get_datasource(self, ident):
        self._check_fail()
        for d in self.datasources.values():
            if ident in (d.id, d.name):
                return d
        raise NotFound(f"datasource {ident!r} not found")

    def create_datasource(self, name, driver, config, description="", enabled=True):
        self._check_fail()
        if not name.replace("_", "a").isalnum():
            raise InvalidInput(f"datasource name {name!r}: use letters, digits and _")
        if driver not in DRIVERS:
            raise InvalidInput(f"datasource {name}: unknown driver {driver!r}")
        if driver == "push":
            tables = (config or {}).get("tables")
            if not isinstance(tables, dict) or not tables:
                raise InvalidInput(f"datasource {name}: push driver needs config 'tables'")
        else:
            tables = DRIVERS[driver]["tables"]
        if name in self.datasources:
            raise AlreadyExists(f"datasource {name!r} already exists")
        rec = DatasourceRecord(str(uuid.uuid4()), name, driver, dict(config or {}),
                               description, enabled)
        self.datasources[name] = rec
        self.schemas[name] = {t: list(c) for t, c in tables.items()}
        self.engine.set_schema(name, self.schemas[name])
        return rec

    def delete_datasource(self, ident):
        rec = self.get_datasource(ident)
        del self.datasources[rec.name]
        return rec

    def datasource_schema(self, ident):
        return self.schemas[self.get_datasource(ident).name]

    def datasource_tables(self, ident):
        return sorted(self.datasource_schema(ident))

    def datasource_rows(self, ident, table):
        rec = self.get_datasource(ident)
        if table not in self.schemas[rec.name]:
            raise NotFound(f"datasource {rec.name} has no table {table!r}")
        return set(self.rows.get((rec.name, table), set()))

    def push_rows(self, ident, table, rows):
        rec = self.get_datasource(ident)
        if rec.driver != "push":
            raise InvalidInput(f"datasource {rec.name} is not a push datasource")
        self.pushed.append((rec.name, table, rows))
        self.rows[(rec.name, table)] = {tuple(r) for r in rows}
        self.engine.replace_table(rec.name, table, [tuple(r) for r in rows])

    def datasource_status(self, ident):
        rec = self.get_datasource(ident)
        return {"initialized": True, "last_updated": "now", "number_of_updates": 1,
                "datasource": rec.name}

    def datasource_actions(self, ident):
        return DRIVERS[self.get_datasource(ident).driver]["actions"]

    def execute_datasource_action(self, ident, action, args):
        rec = self.get_datasource(ident)
        self.executed.append((rec.name, action, list(args)))

    def request_refresh(self, ident):
        self.refreshed.append(self.get_datasource(ident).name)

    def drivers(self):
        return [DRIVERS[n] for n in sorted(DRIVERS)]

    def driver(self, name):
        if name not in DRIVERS:
            raise NotFound(f"driver {name!r} not found")
        return DRIVERS[name]

    def ha_status(self) -> dict[str, Any]:
        self._check_fail()
        return {"member": "solo:all", "ready": True, "peers": []}

    is_ready = True

    def ready(self) -> bool:
        return self.is_ready
