"""The wire form of bus messages: a dataclass, checked field by field (pure).

A message arrives as the plain values oslo.messaging delivers (JSON: dicts,
lists, strings, numbers, booleans, null).  ``parse(cls, data)`` turns them into
``cls`` or raises ``Refused`` naming the field and the fault: a missing or
unknown field, a value of the wrong type, or a list or object longer than its
bound.  ``dump(message)`` gives the plain form back; the field names are the
wire format.

Bounds are part of a field's type, ``Annotated[list[Row], Most(MAX_ROWS)]``;
a list or object without one holds at most ``MAX_ITEMS``.  A forged heartbeat
with 200k datasources once kept a PE busy for 90 s, and nothing that travels
on the bus needs more entries than these.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

MAX_ITEMS = 1000          # datasources of a DSD, tables of a datasource, columns, args, ...
MAX_ROWS = 1_000_000      # rows of one table in a delta, snapshot or push (10x the default
                          # [limits] max_rows_per_table; the DSD keeps its tables within it)


class Refused(ValueError):
    """A message that does not fit its dataclass; ``str()`` says where and why."""

    def __init__(self, why: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(why)
        self.why = why
        self.path = path

    def within(self, step: str) -> Refused:
        return Refused(self.why, (step, *self.path))

    def __str__(self) -> str:
        where = "".join(p if p.startswith("[") else f".{p}" for p in self.path).lstrip(".")
        return f"{where}: {self.why}" if where else self.why


@dataclass(frozen=True)
class Most:
    """The most items a list or object field may hold."""

    items: int


# A value of a table row or an action argument: any JSON scalar. Which of them a
# table may hold is the engine's check (check_rows), run by the DSD before it
# publishes and by every PE before it applies: the bus checks shape, not domain.
Scalar = str | int | float | bool | None
Row = Annotated[list[Scalar], Most(MAX_ITEMS)]
Rows = Annotated[list[Row], Most(MAX_ROWS)]

Check = Callable[[Any], Any]
_CHECKS: dict[Any, Check] = {}
_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
          type(None): "null"}


def parse(cls: type, data: Any) -> Any:
    """``data`` as a ``cls``, checked all through; ``Refused`` if it does not fit."""
    return _check(cls)(data)


def dump(message: Any) -> Any:
    """The plain (JSON-able) form of a message: dataclasses become dicts by field name."""
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return {f.name: dump(getattr(message, f.name)) for f in dataclasses.fields(message)}
    if isinstance(message, list | tuple):
        if message and dataclasses.is_dataclass(message[0]):
            return [dump(m) for m in message]
        return message  # rows and args: scalars all through, sent as they are
    if isinstance(message, dict):
        return {k: dump(v) for k, v in message.items()}
    return message


def short(text: str, most: int = 60) -> str:
    """``text`` cut for a log line: a forged name may be a megabyte long."""
    return text if len(text) <= most else text[:most - 3] + "..."


def names(items: list[str], most: int = 5) -> str:
    shown = ", ".join(short(i) for i in items[:most])
    return shown + (f" (+{len(items) - most} more)" if len(items) > most else "")


def _check(tp: Any) -> Check:
    check = _CHECKS.get(tp)
    if check is None:
        check = _CHECKS[tp] = _compile(tp, MAX_ITEMS)
    return check


def _compile(tp: Any, most: int) -> Check:
    if typing.get_origin(tp) is Annotated:
        base, *extra = typing.get_args(tp)
        bounds = [m.items for m in extra if isinstance(m, Most)]
        return _compile(base, bounds[0] if bounds else most)
    if tp is Any:
        return lambda v: v
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    simple = _simple_types(tp)
    if simple is not None:
        return _scalar(simple)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:  # X | None: X's own, detailed refusal
            inner = _compile(rest[0], most)
            return lambda v: None if v is None else inner(v)
        return _union([_compile(a, most) for a in args], _describe(tp))
    if origin is list:
        return _sequence(args[0], most, list)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(args[0], most, tuple)
    if origin is dict and args[0] is str:
        return _mapping(_compile(args[1], MAX_ITEMS), most)
    raise TypeError(f"bus/wire.py cannot check values of type {tp!r}")


def _simple_types(tp: Any) -> frozenset | None:
    """The plain types ``tp`` allows, if it is a plain type or a union of them."""
    arms = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union,
                                                            types.UnionType) else (tp,)
    if all(a in _NAMES for a in arms):
        return frozenset(arms)
    return None


def _describe(tp: Any) -> str:
    simple = _simple_types(tp)
    if simple is not None:
        return _describe_simple(simple)
    if dataclasses.is_dataclass(tp):
        return f"an object ({tp.__name__})"
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _describe(typing.get_args(tp)[0])
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "an object"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    return repr(tp)


def _describe_simple(allowed: frozenset) -> str:
    if allowed >= _NAMES.keys():
        return "a string, number, boolean or null"
    return " or ".join(name for t, name in _NAMES.items() if t in allowed)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _scalar(allowed: frozenset) -> Check:
    expected = _describe_simple(allowed)
    # A number field takes an integer too (JSON has one kind of number); bool is
    # an int in Python but never in a message: type(), not isinstance().
    accepts = allowed | {int} if float in allowed else allowed

    def check(value):
        if type(value) not in accepts:
            raise Refused(f"expected {expected}, got {_kind(value)}")
        return value
    check.accepts = accepts  # type: ignore[attr-defined] - the fast path of _sequence
    return check


def _union(arms: list[Check], expected: str) -> Check:
    def check(value):
        for arm in arms:
            try:
                return arm(value)
            except Refused:
                continue
        raise Refused(f"expected {expected}, got {_kind(value)}")
    return check


def _sequence(item_type: Any, most: int, kind: type) -> Check:
    item = _compile(item_type, MAX_ITEMS)
    accepts = getattr(item, "accepts", None)
    nested = getattr(item, "scalars", None)  # rows: lists of scalars

    def check(value):
        if type(value) not in (list, tuple):
            raise Refused(f"expected a list, got {_kind(value)}")
        if len(value) > most:
            raise Refused(f"{len(value)} items; at most {most} travel on the bus")
        # The fast paths check in one pass, without a call per item: a table
        # of a million rows goes through here.
        if accepts is not None and all(type(v) in accepts for v in value):
            return kind(value)
        if nested is not None and _all_scalar_lists(value, *nested):
            return kind(value)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v))
            except Refused as exc:
                raise exc.within(f"[{i}]") from None
        return kind(out)
    if accepts is not None:
        check.scalars = (accepts, most)  # type: ignore[attr-defined]
    return check


def _all_scalar_lists(value, accepts: frozenset, most: int) -> bool:
    for row in value:
        if type(row) is not list or len(row) > most:
            return False
        for v in row:
            if type(v) not in accepts:
                return False
    return True


def _mapping(value_check: Check, most: int) -> Check:
    def check(value):
        if type(value) is not dict:
            raise Refused(f"expected an object, got {_kind(value)}")
        if len(value) > most:
            raise Refused(f"{len(value)} entries; at most {most} travel on the bus")
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise Refused(f"key {short(repr(k))} is not a string")
            try:
                out[k] = value_check(v)
            except Refused as exc:
                raise exc.within(short(k)) from None
        return out
    return check


def _dataclass(cls: type) -> Check:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    checks = {f.name: _compile(hints[f.name], MAX_ITEMS) for f in fields}
    required = {f.name for f in fields if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING}
    name = cls.__name__

    def check(value):
        if type(value) is not dict:
            raise Refused(f"expected an object ({name}), got {_kind(value)}")
        unknown = sorted(str(k) for k in value if k not in checks)
        if unknown:
            raise Refused(f"unknown field{'s' if len(unknown) > 1 else ''} "
                          f"{names(unknown)} in {name}")
        missing = sorted(required - value.keys())
        if missing:
            raise Refused(f"missing field{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} of {name}")
        kwargs = {}
        for key, v in value.items():
            try:
                kwargs[key] = checks[key](v)
            except Refused as exc:
                raise exc.within(key) from None
        return cls(**kwargs)
    return check
