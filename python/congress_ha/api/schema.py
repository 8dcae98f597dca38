"""JSON schemas of the API's bodies, and the small checker that enforces them.

The same dicts are the OpenAPI document's schemas (openapi.py) and the rules a
request body must pass before a view sees it, so the two cannot drift. The
checker knows the subset of JSON Schema used here: ``type`` (one name or a
list), ``properties``, ``required``, ``additionalProperties``, ``items``,
``enum``, ``minLength``, ``maxLength``, ``minItems``, ``oneOf`` and ``$ref``
into COMPONENTS.
"""

from __future__ import annotations

from typing import Any

from congress_ha.api.http import ApiError

KINDS = ["nonrecursive", "recursive", "action", "database", "materialized"]

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _json_name(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "object", "array", "null"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def check(schema: dict, value: Any, where: str = "body") -> None:
    """Raise ApiError(400) naming the first place where ``value`` breaks ``schema``."""
    if "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
    if "oneOf" in schema:
        problems = []
        for option in schema["oneOf"]:
            try:
                check(option, value, where)
                return
            except ApiError as exc:
                problems.append(exc.message)
        raise ApiError(400, f"{where}: matches none of the accepted forms: "
                            + "; or ".join(problems))
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[n](value) for n in names):
            raise ApiError(400, f"{where}: expected {' or '.join(names)}, "
                                f"got {_json_name(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise ApiError(400, f"{where}: {value!r} is not one of "
                            f"{', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ApiError(400, f"{where}: must not be empty" if schema["minLength"] == 1
                           else f"{where}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ApiError(400, f"{where}: longer than {schema['maxLength']} characters")
    elif isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                raise ApiError(400, f"{where}: missing field {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                check(props[name], item, f"{where}.{name}")
            elif extra is False:
                raise ApiError(400, f"{where}: unknown field {name!r}; known fields: "
                                    f"{', '.join(props)}")
            elif isinstance(extra, dict):
                check(extra, item, f"{where}.{name}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise ApiError(400, f"{where}: needs at least {schema['minItems']} item(s)")
        if "items" in schema:
            for i, item in enumerate(value):
                check(schema["items"], item, f"{where}[{i}]")


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict, required: tuple = (), extra: bool | dict = False) -> dict:
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "additionalProperties": extra}
    if required:
        out["required"] = list(required)
    return out


def _results(item: dict) -> dict:
    return _obj({"results": {"type": "array", "items": item}}, ("results",), extra=True)


_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
SCALAR = {"type": ["string", "integer", "number"]}

# -- request bodies ------------------------------------------------------------

RULE_IN = _obj({"rule": {"type": "string", "minLength": 1,
                         "description": "the rule text, e.g. p(x) :- q(x)"},
                "name": _OPT_STR, "comment": _OPT_STR}, ("rule",))

POLICY_IN = _obj({
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "abbreviation": {"type": ["string", "null"], "maxLength": 5},
    "description": _OPT_STR,
    "kind": {"type": ["string", "null"], "enum": KINDS + [None]},
    "rules": {"type": "array", "items": RULE_IN},
}, ("name",))

LIBRARY_IN = POLICY_IN

SIMULATE_IN = _obj({
    "query": {"type": "string", "minLength": 1},
    "sequence": {"type": "string"},
    "action_policy": _OPT_STR,
}, ("query", "sequence"))

ACTION_ARGS = _obj({"positional": {"type": "array", "items": SCALAR},
                    "named": {"type": "object", "additionalProperties": SCALAR}})

EXECUTE_IN = _obj({"name": {"type": "string", "minLength": 1},
                   "args": ACTION_ARGS}, ("name",))

DATASOURCE_IN = _obj({
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "driver": {"type": "string", "minLength": 1},
    "config": {"type": ["object", "null"]},
    "description": _OPT_STR,
    "enabled": {"type": "boolean"},
}, ("name", "driver"))

ROWS_IN = {"type": "array", "items": {"oneOf": [
    {"type": "array", "items": SCALAR},
    {"type": "object", "additionalProperties": SCALAR},
]}}

EMPTY_IN = _obj({})

# -- responses (documentation; the views build them) ----------------------------

COMPONENTS: dict[str, dict] = {
    "Error": _obj({"error": _obj({"message": _STR, "error_code": {"type": "integer"},
                                  "error_data": {}}, ("message", "error_code"))},
                  ("error",)),
    "Rule": _obj({"id": _STR, "rule": _STR, "name": _OPT_STR, "comment": _OPT_STR},
                 ("id", "rule"), extra=True),
    "Policy": _obj({"id": _STR, "name": _STR, "abbreviation": _OPT_STR,
                    "description": _OPT_STR, "owner_id": _OPT_STR, "kind": _STR,
                    "rules": {"type": "array", "items": ref("Rule")}},
                   ("id", "name", "kind"), extra=True),
    "LibraryPolicy": _obj({"id": _STR, "name": _STR, "abbreviation": _OPT_STR,
                           "description": _OPT_STR, "kind": _STR,
                           "rules": {"type": "array", "items": _obj(
                               {"rule": _STR, "name": _OPT_STR, "comment": _OPT_STR},
                               ("rule",), extra=True)}},
                          ("id", "name"), extra=True),
    "Datasource": _obj({"id": _STR, "name": _STR, "driver": _STR, "description": _OPT_STR,
                        "config": {"type": "object"}, "enabled": {"type": "boolean"}},
                       ("id", "name", "driver"), extra=True),
    "TableId": _obj({"id": _STR}, ("id",), extra=True),
    "Rows": _obj({"results": {"type": "array", "items": _obj(
                      {"data": {"type": "array", "items": SCALAR}}, ("data",))},
                  "trace": _STR}, ("results",), extra=True),
    "TableSchema": _obj({"table_id": _STR, "columns": {"type": "array", "items": _obj(
                         {"name": _STR, "description": _STR}, ("name",), extra=True)}},
                        ("table_id", "columns"), extra=True),
    "Driver": _obj({"id": _STR, "description": _STR}, ("id",), extra=True),
}

OBJECT = {"type": "object"}
POLICY_LIST = _results(ref("Policy"))
RULE_LIST = _results(ref("Rule"))
LIBRARY_LIST = _results(ref("LibraryPolicy"))
DATASOURCE_LIST = _results(ref("Datasource"))
TABLE_LIST = _results(ref("TableId"))
DRIVER_LIST = _results(ref("Driver"))
ACTION_LIST = _results(_obj({"name": _STR, "args": {"type": "array"},
                             "description": _STR}, ("name",), extra=True))
SCHEMA = _obj({"tables": {"type": "array", "items": ref("TableSchema")}}, ("tables",),
              extra=True)
SIMULATE_OUT = _obj({"result": {"type": "array", "items": _STR}, "trace": _STR},
                    ("result",), extra=True)
