"""congress-ha-ctl rules|datasources list|delete and db upgrade|version: the stored
state and the schema, straight from the database ([database] connection).

Rules and datasources, for the day the API cannot help:
A stored rule that no engine can load (quarantined at start) or a datasource
whose driver cannot start can always be seen and removed here: nothing is
parsed, no process needs to run. A rule delete bumps the policy revision (the
same guarded write the API makes), so every PE drops the rule at its next poll;
the DSD rereads its datasources within its own poll.
"""

from __future__ import annotations

import json
from typing import Any

OK, FAILED, NOT_FOUND = 0, 1, 3


def _sessions(settings):
    from congress_ha.store.db import open_engine, session_factory

    return session_factory(open_engine(settings.get("database", "connection")))


def _print(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return
    for row in rows:
        print("  ".join(str(row.get(c, "")) for c in columns))


def rules_list(settings, as_json: bool) -> int:
    from sqlalchemy import select

    from congress_ha.store.models import Policy, Rule

    with _sessions(settings)() as s:
        names = {p.id: p.name for p in s.execute(select(Policy)).scalars()}
        rules = [{"id": r.id, "policy": names.get(r.policy_id, r.policy_id), "name": r.name,
                  "rule": r.rule}
                 for r in s.execute(select(Rule).order_by(Rule.created_at)).scalars()]
    _print(rules, as_json, ["id", "policy", "rule"])
    return OK


def rules_delete(settings, rule_id: str) -> int:
    from congress_ha.store.policies import NotFound, PolicyStore, RevisionConflict

    store = PolicyStore(_sessions(settings))
    for _ in range(10):
        try:
            store.delete_rule(store.revision(), rule_id)
        except RevisionConflict:
            continue  # a write landed meanwhile: take the new revision
        except NotFound:
            print(f"congress-ha-ctl: no stored rule with id {rule_id!r} "
                  "(congress-ha-ctl rules list)")
            return NOT_FOUND
        print(f"deleted rule {rule_id}; every PE drops it at its next policy poll")
        return OK
    print("congress-ha-ctl: the policies kept changing; try again")
    return FAILED


def datasources_list(settings, as_json: bool) -> int:
    from congress_ha.store.datasources import list_datasources

    rows = [{"id": d.id, "name": d.name, "driver": d.driver, "enabled": d.enabled,
             "config": d.config}
            for d in list_datasources(_sessions(settings), enabled_only=False)]
    _print(rows, as_json, ["id", "name", "driver", "enabled"])
    return OK


def datasources_delete(settings, ident: str) -> int:
    from congress_ha.store.datasources import delete_datasource, list_datasources

    sessions = _sessions(settings)
    for d in list_datasources(sessions, enabled_only=False):
        if ident in (d.id, d.name):
            delete_datasource(sessions, d.id)
            print(f"deleted datasource {d.name} ({d.id}); the DSD stops it at its next poll")
            return OK
    print(f"congress-ha-ctl: no stored datasource {ident!r} "
          "(congress-ha-ctl datasources list)")
    return NOT_FOUND


def db_upgrade(settings) -> int:
    from congress_ha.store.db import new_engine, store_errors
    from congress_ha.store.schema import ensure_schema

    engine = new_engine(settings.get("database", "connection"))
    try:
        with store_errors(engine):
            change = ensure_schema(engine, upgrade=True)
    finally:
        engine.dispose()
    if change.stamped:
        print(f"stamped {change.before}: the tables an earlier congress-ha created")
    if change.before != change.after:
        print(f"upgraded {change.before or '(empty)'} -> {change.after}")
    elif not change.stamped:
        print(f"unchanged at {change.after}")
    return OK


def db_version(settings) -> int:
    from congress_ha.store.db import new_engine, store_errors
    from congress_ha.store.schema import read_revisions

    engine = new_engine(settings.get("database", "connection"))
    try:
        with store_errors(engine):
            r = read_revisions(engine)
    finally:
        engine.dispose()
    database = r.database or "(none)"
    if r.unstamped:
        database += " (tables made before migrations: stamped at the next start)"
    if r.database is None:
        verdict = "empty: the first start or `congress-ha-ctl db upgrade` creates the schema"
    elif not r.known:
        verdict = ("newer than this release: this node runs an older congress-ha than the "
                   "database: upgrade congress-ha on this node")
    elif r.database != r.head:
        verdict = ("older than this release: run `congress-ha-ctl db upgrade` (once, from "
                   "any node)")
    else:
        verdict = "up to date"
    print(f"database revision {database}")
    print(f"code head         {r.head}")
    print(verdict)
    return OK
