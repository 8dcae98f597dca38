"""Congress's builtin tables: names, arities, inputs and their Python behaviour.

A builtin with N inputs reads its leftmost N columns and computes the rest
(comparisons compute nothing and hold or not). As in Congress, a builtin that
raises on its arguments (a type mismatch, a division by zero, an unparsable
date) simply does not hold: the literal is false, no error is raised.

The spec is Congress's ``congress/datalog/builtin.py``: dates are parsed with
dateutil as there (``"Jan 5, 2014 10:00:00"``, ``"2000-1-1 10:5:6"``), the
``validate_*`` builtins use oslo.config's types as there, and
``networks_overlap`` keeps Congress's test (the second network's first or
last address lies in the first). Differences, on purpose (docs/language.md):
a date without a day or year is completed from 1900-01-01, not from today
(replicas must agree whatever their clocks); ``now`` is not a function here
but reads the clock table a DSD publishes (``Engine.set_clock``).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from dateutil import parser as _dateparser
from oslo_config import types as _types

from .ast import Float, Value, typed_row


@dataclass(frozen=True)
class Builtin:
    name: str
    arity: int
    num_inputs: int
    fn: Callable[..., object]

    @property
    def num_outputs(self) -> int:
        return self.arity - self.num_inputs


def _div(x: Value, y: Value) -> Value:
    # Congress: integer division for two ints, true division otherwise.
    if type(x) is int and type(y) is int:
        return x // y
    return x / y  # type: ignore[operator]


_DATE_DEFAULT = _dt.datetime(1900, 1, 1)  # Congress: today; fixed, so replicas agree


def _to_datetime(x: object) -> _dt.datetime:
    if not isinstance(x, str):
        raise TypeError("a date-time must be a string")
    return _dateparser.parse(x, ignoretz=True, default=_DATE_DEFAULT)


def _to_timedelta(x: object) -> _dt.timedelta:
    # Congress: a number of seconds, or "[[[[weeks:]days:]hours:]minutes:]seconds".
    if isinstance(x, str):
        keys = ["seconds", "minutes", "hours", "days", "weeks"]
        fields = x.split(":")
        if len(fields) > len(keys):
            raise ValueError("too many fields in a time delta")
        return _dt.timedelta(**{k: int(v) for k, v in zip(keys, reversed(fields), strict=False)})
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise TypeError("a time delta must be a number of seconds or a string")
    return _dt.timedelta(seconds=x)


def _unpack_date(x: str) -> tuple[int, int, int]:
    d = _to_datetime(x)
    return (d.year, d.month, d.day)


def _unpack_time(x: str) -> tuple[int, int, int]:
    d = _to_datetime(x)
    return (d.hour, d.minute, d.second)


def _unpack_datetime(x: str) -> tuple[int, ...]:
    d = _to_datetime(x)
    return (d.year, d.month, d.day, d.hour, d.minute, d.second)


def _seconds_since_1900(x: str) -> int:
    return int((_to_datetime(x) - _dt.datetime(1900, 1, 1)).total_seconds())


def _ip(x: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(x)  # type: ignore[arg-type]


def _net(x: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(x, strict=False)  # type: ignore[arg-type]


def _networks_overlap(x: object, y: object) -> bool:
    a, b = _net(x), _net(y)
    if a.version != b.version:
        return False
    first, last = int(a.network_address), int(a.broadcast_address)
    return first <= int(b.network_address) <= last or first <= int(b.broadcast_address) <= last


def _bound(value: object) -> object:
    return None if value == "" else value


def _validation(check: Callable[[object], object], value: object) -> str:
    """Congress's validate_*: "" when ``value`` passes, else the reason."""
    try:
        check(value)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return ""


def _validate_int(minv: object, maxv: object, value: object) -> str:
    return _validation(_types.Integer(min=_bound(minv), max=_bound(maxv)), value)


def _validate_float(minv: object, maxv: object, value: object) -> str:
    return _validation(_types.Float(min=_bound(minv), max=_bound(maxv)), value)


def _validate_string(regex: object, max_length: object, quotes: object, ignore_case: object,
                     value: object) -> str:
    check = _types.String(regex=_bound(regex), max_length=max_length, quotes=quotes,
                          ignore_case=ignore_case)
    return _validation(check, value)


def _table() -> dict[str, Builtin]:
    specs: list[tuple[str, int, int, Callable[..., object]]] = [
        # comparison
        ("lt", 2, 2, lambda x, y: x < y),
        ("lteq", 2, 2, lambda x, y: x <= y),
        ("equal", 2, 2, lambda x, y: x == y),
        ("gt", 2, 2, lambda x, y: x > y),
        ("gteq", 2, 2, lambda x, y: x >= y),
        ("max", 3, 2, lambda x, y: max(x, y)),
        # arithmetic
        ("plus", 3, 2, lambda x, y: x + y),
        ("minus", 3, 2, lambda x, y: x - y),
        ("mul", 3, 2, lambda x, y: x * y),
        ("div", 3, 2, _div),
        ("float", 2, 1, float),
        ("int", 2, 1, int),
        # string
        ("concat", 3, 2, lambda x, y: x + y),
        ("len", 2, 1, len),
        # date and time
        ("unpack_date", 4, 1, _unpack_date),
        ("unpack_time", 4, 1, _unpack_time),
        ("unpack_datetime", 7, 1, _unpack_datetime),
        ("pack_time", 4, 3, lambda h, m, s: f"{h}:{m}:{s}"),
        ("pack_date", 4, 3, lambda y, m, d: f"{y}-{m}-{d}"),
        ("pack_datetime", 7, 6, lambda y, m, d, h, i, s: f"{y}-{m}-{d} {h}:{i}:{s}"),
        ("extract_date", 2, 1, lambda x: str(_to_datetime(x).date())),
        ("extract_time", 2, 1, lambda x: str(_to_datetime(x).time())),
        ("datetime_to_seconds", 2, 1, _seconds_since_1900),
        ("datetime_plus", 3, 2, lambda x, y: str(_to_datetime(x) + _to_timedelta(y))),
        ("datetime_minus", 3, 2, lambda x, y: str(_to_datetime(x) - _to_timedelta(y))),
        ("datetime_lt", 2, 2, lambda x, y: _to_datetime(x) < _to_datetime(y)),
        ("datetime_lteq", 2, 2, lambda x, y: _to_datetime(x) <= _to_datetime(y)),
        ("datetime_gt", 2, 2, lambda x, y: _to_datetime(x) > _to_datetime(y)),
        ("datetime_gteq", 2, 2, lambda x, y: _to_datetime(x) >= _to_datetime(y)),
        ("datetime_equal", 2, 2, lambda x, y: _to_datetime(x) == _to_datetime(y)),
        # network addresses
        ("ips_equal", 2, 2, lambda x, y: _ip(x) == _ip(y)),
        ("ips_lt", 2, 2, lambda x, y: _ip(x) < _ip(y)),
        ("ips_lteq", 2, 2, lambda x, y: _ip(x) <= _ip(y)),
        ("ips_gt", 2, 2, lambda x, y: _ip(x) > _ip(y)),
        ("ips_gteq", 2, 2, lambda x, y: _ip(x) >= _ip(y)),
        ("networks_equal", 2, 2, lambda x, y: _net(x) == _net(y)),
        ("networks_overlap", 2, 2, _networks_overlap),
        ("ip_in_network", 2, 2, lambda x, y: _ip(x) in _net(y)),
        # option values (Congress's config validator)
        ("validate_int", 4, 3, _validate_int),
        ("validate_float", 4, 3, _validate_float),
        ("validate_string", 6, 5, _validate_string),
    ]
    return {name: Builtin(name, arity, inputs, fn) for name, arity, inputs, fn in specs}


BUILTINS: dict[str, Builtin] = _table()

# Congress's ``now(x)`` read the local clock. Here it reads this table, which
# the DSD publishes (datasources/clock.py), so every replica sees one time.
CLOCK = ("builtin", "now")
CLOCK_COLUMNS = ["time"]

_OUT_TYPES = {int: False, str: False, float: True, Float: True}  # type -> is a float


def call(builtin: Builtin, args: tuple) -> tuple | None:
    """Run a builtin; return its outputs as a tuple, () if it holds, None if not.

    On the hot path of every join that uses a builtin: the common case (no
    float in, none out) costs two type checks per value and no allocation.
    """
    for a in args:
        if type(a) is Float:
            # Plain floats in: Congress computes on Python values (equal(2, 2.0)).
            args = tuple(float(x) if type(x) is Float else x for x in args)
            break
    try:
        result = builtin.fn(*args)
    except Exception:  # noqa: BLE001 - a builtin that fails does not hold (Congress)
        return None
    outputs = builtin.num_outputs
    if outputs == 0:
        return () if result else None
    if outputs == 1:
        result = (result,)
    elif type(result) is not tuple or len(result) != outputs:
        return None
    floats = False
    for value in result:
        kind = _OUT_TYPES.get(type(value))  # bool and everything else: None
        if kind is None:
            return None
        floats = floats or kind
    return typed_row(result) if floats else result  # a float out is a FLOAT constant


def lookup(name: str, arity: int) -> Builtin | None:
    builtin = BUILTINS.get(name)
    return builtin if builtin is not None and builtin.arity == arity else None
