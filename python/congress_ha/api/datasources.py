"""Views of datasources: their records, tables, rows, schema, status and actions.

Rows are read from this node's replica (no RPC); pushing rows, status,
execute and refresh go to the DSD through the Service (503 when it cannot
answer in time).
"""

from __future__ import annotations

from typing import Any

from flask import Response

from congress_ha.api.http import JSON, ApiError
from congress_ha.api.policies import positional_args


def datasource_dict(rec: Any) -> dict[str, Any]:
    return {"id": rec.id, "name": rec.name, "driver": rec.driver,
            "description": rec.description or "", "config": rec.config or {},
            "enabled": bool(rec.enabled)}


def table_dict(table: str, columns: list[str]) -> dict[str, Any]:
    return {"table_id": table,
            "columns": [{"name": c, "description": "None"} for c in columns]}


def list_datasources(svc, call) -> dict:
    return {"results": [datasource_dict(d) for d in svc.list_datasources()]}


def get_datasource(svc, call) -> dict:
    return datasource_dict(svc.get_datasource(call.path["datasource"]))


def create_datasource(svc, call) -> dict:
    body = call.body
    rec = svc.create_datasource(body["name"], body["driver"], body.get("config") or {},
                                body.get("description") or "", body.get("enabled", True))
    return datasource_dict(rec)


def delete_datasource(svc, call) -> dict:
    return datasource_dict(svc.delete_datasource(call.path["datasource"]))


def execute(svc, call) -> dict:
    svc.execute_datasource_action(call.path["datasource"], call.body["name"],
                                  positional_args(call.body.get("args")))
    return {}


def request_refresh(svc, call) -> dict:
    svc.request_refresh(call.path["datasource"])
    return {}


def list_tables(svc, call) -> dict:
    return {"results": [{"id": t} for t in svc.datasource_tables(call.path["datasource"])]}


def _columns(svc, call) -> list[str]:
    ds, table = call.path["datasource"], call.path["table"]
    columns = svc.datasource_schema(ds).get(table)
    if columns is None:
        raise ApiError(404, f"datasource {ds!r} has no table {table!r}")
    return list(columns)


def get_table(svc, call) -> dict:
    _columns(svc, call)
    return {"id": call.path["table"]}


def list_rows(svc, call) -> Response:
    ds, table = call.path["datasource"], call.path["table"]
    return Response(call.extra["rows_cache"].body(("datasource", ds, table),
                                                  svc.datasource_rows(ds, table)),
                    mimetype=JSON)


def _normalize(columns: list[str], rows: list) -> list[list]:
    """Each row as a list in column order; 400 naming the first bad row."""
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            unknown = sorted(set(row) - set(columns))
            missing = [c for c in columns if c not in row]
            if unknown or missing:
                raise ApiError(400, f"body[{i}]: the columns are {', '.join(columns)}"
                                    + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                                    + (f"; missing: {', '.join(missing)}" if missing else ""))
            row = [row[c] for c in columns]
        elif len(row) != len(columns):
            raise ApiError(400, f"body[{i}]: {len(row)} values for {len(columns)} columns "
                                f"({', '.join(columns)})")
        out.append(row)
    return out


def replace_rows(svc, call) -> dict:
    rows = _normalize(_columns(svc, call), call.body)
    svc.push_rows(call.path["datasource"], call.path["table"], rows)
    return {}


def table_schema(svc, call) -> dict:
    return table_dict(call.path["table"], _columns(svc, call))


def datasource_schema(svc, call) -> dict:
    tables = svc.datasource_schema(call.path["datasource"])
    return {"tables": [table_dict(t, cols) for t, cols in sorted(tables.items())]}


def status(svc, call) -> dict:
    return svc.datasource_status(call.path["datasource"])


def actions(svc, call) -> dict:
    names = svc.datasource_actions(call.path["datasource"])
    if names is None:   # the driver accepts any action name (e.g. file)
        return {"results": [], "any_action": True}
    return {"results": [{"name": n, "args": [], "description": ""} for n in names]}
