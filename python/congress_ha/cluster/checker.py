"""Reading cluster.yaml: YAML with positions, and value checks that know their path.

``read_yaml`` turns syntax errors and repeated keys into ``file:line:col``
lines; a ``Checker`` reads one value at a time, records each mistake as
``file: path: what is wrong and what to do`` and returns None for it, so the
model can go on and report every mistake at once.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import yaml

# Pacemaker's duration units (crm_get_msec), spelled the way we write them back.
_UNITS = {
    "ms": ("ms", 1), "msec": ("ms", 1),
    "s": ("s", 1000), "sec": ("s", 1000), "": ("s", 1000),
    "m": ("min", 60_000), "min": ("min", 60_000),
    "h": ("h", 3_600_000), "hr": ("h", 3_600_000),
}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ClusterConfigError(Exception):
    """cluster.yaml has one or more mistakes; ``lines`` holds one line per mistake."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


@dataclass(frozen=True)
class Duration:
    """A Pacemaker duration: milliseconds for arithmetic, text for the CIB."""

    ms: int
    text: str

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------
# Reading YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that reports a key given twice in one mapping (PyYAML keeps the last)."""

    duplicates: list[tuple[int, int, str]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hashable = key in seen
        except TypeError:
            continue
        if hashable:
            mark = key_node.start_mark
            loader.duplicates.append((mark.line + 1, mark.column + 1, str(key)))
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str, source: str) -> Any:
    loader = _Loader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = exc.problem or exc.context or "invalid YAML"
        raise ClusterConfigError([f"{where}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ClusterConfigError([f"{source}: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ClusterConfigError([
            f"{source}:{line}:{col}: key {key!r} appears twice in one mapping; "
            "keep one (YAML would silently use the last)"
            for line, col, key in loader.duplicates])
    return data


# --------------------------------------------------------------------------
# Checking


class Checker:
    """Collects every mistake with its path; the readers return None on a mistake."""

    def __init__(self, source: str):
        self.source = source
        self.lines: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.lines.append(f"{self.source}: {path}: {message}")

    def mapping(self, value: Any, path: str, known: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping with keys {', '.join(known)}; "
                             f"got {kind(value)}")
            return None
        for key in value:
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                tip = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(known)}"
                self.error(join(path, key), f"unknown key; {tip}")
        for key in required:
            if value.get(key) is None:
                self.error(join(path, key), "missing; it is required")
        return value

    def string(self, value: Any, path: str, pattern: re.Pattern | None = None,
               rule: str = "") -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.error(path, f"must be a non-empty string; got {kind(value)}")
            return None
        if _CONTROL.search(value):
            self.error(path, "contains a line break or another control character; "
                             "write it on one line")
            return None
        if pattern is not None and not pattern.match(value):
            self.error(path, f"{value!r} is not valid: {rule}")
            return None
        return value

    def integer(self, value: Any, path: str, low: int | None = None,
                high: int | None = None, unit: str = "") -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be an integer{unit}; got {kind(value)}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.error(path, f"{value} is out of range; allowed {_range(low, high)}{unit}")
            return None
        return value

    def number(self, value: Any, path: str, low: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(path, f"must be a number of seconds; got {kind(value)}")
            return None
        if value < low:
            self.error(path, f"{value} is below the minimum {low}")
            return None
        return float(value)

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, f"must be true or false; got {kind(value)}")
            return None
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str | None:
        if value not in choices:
            self.error(path, f"{value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def duration(self, value: Any, path: str, minimum_ms: int = 0) -> Duration | None:
        parsed = parse_duration(value)
        if parsed is None:
            self.error(path, f"{value!r} is not a duration; write e.g. 500ms, 10s, 2min "
                             "(a bare number means seconds)")
            return None
        if parsed.ms < minimum_ms:
            self.error(path, f"{parsed.text} is too short; at least {minimum_ms} ms")
            return None
        return parsed

    def address(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.error(path, f"{text!r} is not an IPv4 or IPv6 address; corosync and "
                             "Pacemaker need addresses, not host names, here")
            return None

    def params(self, value: Any, path: str) -> dict[str, str]:
        """A flat mapping of agent parameters, values written as text."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping of parameter names to values; "
                             f"got {kind(value)}")
            return {}
        out: dict[str, str] = {}
        for key, item in value.items():
            where = join(path, key)
            if not isinstance(key, str) or not _PARAM_NAME.match(key):
                self.error(where, "is not a valid agent parameter name")
            elif isinstance(item, (dict, list)) or item is None:
                self.error(where, f"must be a single value; got {kind(item)}")
            elif isinstance(item, str) and _CONTROL.search(item):
                self.error(where, "contains a line break or another control character")
            elif key == "pcmk_host_list":
                self.error(where, "is set by render (one device per node); remove it")
            else:
                out[key] = _param_text(item)
        return out


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _range(low: int | None, high: int | None) -> str:
    if high is None:
        return f">= {low}"
    if low is None:
        return f"<= {high}"
    return f"{low}..{high}"


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_duration(value: Any) -> Duration | None:
    """Pacemaker duration text (``10s``, ``500ms``, ``2min``; a bare number is seconds)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.lower())
    if not match or match.group(2) not in _UNITS:
        return None
    number = int(match.group(1))
    unit, factor = _UNITS[match.group(2)]
    return Duration(ms=number * factor, text=f"{number}{unit}")
