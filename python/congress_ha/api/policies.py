"""Views of policies, rules, policy tables and rows, and library policies.

Each view takes the Service and a routes.Call (path values, parsed query,
checked body) and returns Congress's JSON shape; the Service's errors travel
up to app.py, which answers them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response

from congress_ha.api.http import JSON, ApiError
from congress_ha.api.rows import encode, sorted_rows


def policy_dict(rec: Any, with_rules: bool = False) -> dict[str, Any]:
    out = {"id": rec.id, "name": rec.name, "abbreviation": rec.abbreviation or "",
           "description": rec.description or "", "owner_id": rec.owner_id or "user",
           "kind": rec.kind}
    if with_rules:
        out["rules"] = [rule_dict(r) for r in rec.rules]
    return out


def rule_dict(rule: Any) -> dict[str, Any]:
    return {"id": rule.id, "rule": rule.rule, "name": rule.name or "",
            "comment": rule.comment or ""}


def library_dict(lib: Any, include_rules: bool = True) -> dict[str, Any]:
    out = {"id": lib.id, "name": lib.name, "abbreviation": lib.abbreviation or "",
           "description": lib.description or "", "kind": lib.kind or "nonrecursive"}
    if include_rules:
        out["rules"] = [{"rule": r.get("rule", ""), "name": r.get("name") or "",
                         "comment": r.get("comment") or ""} for r in (lib.rules or [])]
    return out


def _rule_tuples(rules: list[dict] | None) -> list[tuple[str, str, str]]:
    return [(r["rule"], r.get("name") or "", r.get("comment") or "") for r in rules or []]


# -- policies --------------------------------------------------------------------

def list_policies(svc, call) -> dict:
    return {"results": [policy_dict(p) for p in svc.list_policies()]}


def get_policy(svc, call) -> dict:
    return policy_dict(svc.get_policy(call.path["policy"]))


def create_policy(svc, call) -> dict:
    body = call.body
    lib_id = call.query.get("library_policy")
    if lib_id is not None:
        if body:
            raise ApiError(400, "a policy created with ?library_policy= takes its content "
                                "from the library policy; send no body")
        lib = svc.get_library(lib_id)
        rec = svc.create_policy(lib.name, lib.abbreviation or "", lib.description or "",
                                lib.kind or "nonrecursive", _rule_tuples(lib.rules))
        return policy_dict(rec, with_rules=True)
    if body is None:
        raise ApiError(400, "this request needs a JSON body: {\"name\": ...}, or "
                            "?library_policy=ID")
    rec = svc.create_policy(body["name"], body.get("abbreviation") or "",
                            body.get("description") or "",
                            body.get("kind") or "nonrecursive", _rule_tuples(body.get("rules")))
    return policy_dict(rec, with_rules="rules" in body)


def delete_policy(svc, call) -> dict:
    return policy_dict(svc.delete_policy(call.path["policy"]))


_QUERY_HEAD = re.compile(r"\s*([\w.:\-]+)\s*\(")


def _literal(table: str, row: tuple, sign: str = "") -> str:
    args = ", ".join(json.dumps(v) if isinstance(v, str) else repr(v) for v in row)
    return f"{table}{sign}({args})"


def simulate(svc, call) -> dict:
    body, policy = call.body, call.path["policy"]
    query, sequence = body["query"], body["sequence"]
    action_policy = body.get("action_policy") or None
    head = _QUERY_HEAD.match(query)
    if head is None:
        raise ApiError(400, f"query {query!r}: expected one atom such as p(x) or ds:t(x, 1)")
    table = head.group(1)
    after = svc.simulate(policy, query, sequence, action_policy)
    if call.query.get("delta"):
        before = svc.simulate(policy, query, "", action_policy)
        result = ([_literal(table, r, "+") for r in sorted_rows(after - before)]
                  + [_literal(table, r, "-") for r in sorted_rows(before - after)])
    else:
        result = [_literal(table, r) for r in sorted_rows(after)]
    out: dict[str, Any] = {"result": result}
    if call.query.get("trace"):
        out["trace"] = ("simulate keeps no trace here; read GET /v1/policies/"
                        f"{policy}/tables/TABLE/rows?trace=true for proofs of stored rows")
    return out


def positional_args(args: dict | None) -> list:
    args = args or {}
    if args.get("named"):
        raise ApiError(400, "args.named: this server's drivers take positional arguments "
                            "only; put them in args.positional")
    return list(args.get("positional") or [])


def execute(svc, call) -> dict:
    name = call.body["name"]
    service, sep, action = name.partition(":")
    if not sep or not service.strip() or not action.strip() or ":" in action:
        raise ApiError(400, f"name {name!r}: expected 'datasource:action'")
    svc.execute_datasource_action(service.strip(), action.strip(),
                                  positional_args(call.body.get("args")))
    return {}


# -- rules --------------------------------------------------------------------------

def list_rules(svc, call) -> dict:
    return {"results": [rule_dict(r) for r in svc.get_policy(call.path["policy"]).rules]}


def get_rule(svc, call) -> dict:
    return rule_dict(svc.get_rule(call.path["policy"], call.path["rule_id"]))


def create_rule(svc, call) -> dict:
    body = call.body
    return rule_dict(svc.add_rule(call.path["policy"], body["rule"],
                                  body.get("name") or "", body.get("comment") or ""))


def delete_rule(svc, call) -> dict:
    return rule_dict(svc.delete_rule(call.path["policy"], call.path["rule_id"]))


# -- tables and rows ----------------------------------------------------------------

def list_tables(svc, call) -> dict:
    return {"results": [{"id": t} for t in sorted(svc.policy_tables(call.path["policy"]))]}


def get_table(svc, call) -> dict:
    policy, table = call.path["policy"], call.path["table"]
    if table not in svc.policy_tables(policy):
        raise ApiError(404, f"policy {policy!r} has no table {table!r}")
    return {"id": table}


def list_rows(svc, call) -> Response:
    policy, table = call.path["policy"], call.path["table"]
    if call.query.get("trace"):
        rows, lines = svc.policy_trace(policy, table)
        data = encode(rows, "\n".join(lines) if lines else "Not available")
    else:
        data = call.extra["rows_cache"].body(("policy", policy, table),
                                            svc.policy_rows(policy, table))
    return Response(data, mimetype=JSON)


# -- library policies ---------------------------------------------------------------

def list_library(svc, call) -> dict:
    include = call.query.get("include_rules", True)
    libs = svc.list_library()
    if "name" in call.query:
        libs = [lib for lib in libs if lib.name == call.query["name"]]
    return {"results": [library_dict(lib, include) for lib in libs]}


def get_library(svc, call) -> dict:
    return library_dict(svc.get_library(call.path["library_policy"]),
                        call.query.get("include_rules", True))


def _library_args(body: dict) -> dict[str, Any]:
    return {"name": body["name"], "abbreviation": body.get("abbreviation") or "",
            "description": body.get("description") or "",
            "kind": body.get("kind") or "nonrecursive",
            "rules": [{"rule": r["rule"], "name": r.get("name") or "",
                       "comment": r.get("comment") or ""} for r in body.get("rules") or []]}


def create_library(svc, call) -> dict:
    return library_dict(svc.create_library(**_library_args(call.body)))


def replace_library(svc, call) -> dict:
    ident = call.path["library_policy"]
    current = svc.get_library(ident)   # by id or name; the update is by id
    return library_dict(svc.update_library(current.id, **_library_args(call.body)))


def delete_library(svc, call) -> dict:
    return library_dict(svc.delete_library(call.path["library_policy"]))
