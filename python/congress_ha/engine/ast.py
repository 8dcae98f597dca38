"""Syntax tree of Congress's Datalog: terms, atoms, literals and rules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


class Float(float):
    """A float constant that never equals an int: Congress keeps ``2`` and ``2.0``
    apart (its constants carry a type, INTEGER or FLOAT), Python does not.

    Every float that enters the engine (rule text, datasource rows, builtin
    results) becomes a Float, so joins, negation, indexes and sets inside the
    engine see ``2`` and ``2.0`` as different values. It is still a float to
    everything outside: JSON, arithmetic, ordering, and equality with a plain
    float. Builtins see plain floats (``equal(2, 2.0)`` holds, as in Congress).
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        # int.__eq__(2, Float(2.0)) is NotImplemented, so this also decides 2 == Float.
        return isinstance(other, float) and float.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = float.__hash__  # 2 and 2.0 share a hash: a collision, never equality

    def __repr__(self) -> str:
        return float.__repr__(self)


Value = int | Float | str


def typed(value: object) -> object:
    """``value`` as the engine holds it: a float becomes a Float, the rest as is."""
    return Float(value) if type(value) is float else value


def typed_row(row: tuple) -> tuple:
    """``row`` with its floats as Float; the same tuple when it has none."""
    for v in row:
        if type(v) is float:
            return tuple(Float(x) if type(x) is float else x for x in row)
    return row


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column in the text a statement came from."""

    line: int
    col: int


@dataclass(frozen=True)
class Var:
    name: str
    pos: Pos = field(default=Pos(0, 0), compare=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    value: Value
    pos: Pos = field(default=Pos(0, 0), compare=False)

    def __str__(self) -> str:
        return format_value(self.value)


Term = Var | Const


def format_value(value: Value) -> str:
    """Datalog spelling of a constant (strings double-quoted, JSON escapes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


@dataclass(frozen=True)
class Atom:
    """``ns:table(args, col=term)``, optionally ``execute[...]`` or signed (``p+``)."""

    namespace: str | None
    table: str
    args: tuple[Term, ...] = ()
    named: tuple[tuple[str | int, Term], ...] = ()
    modal: str | None = None
    sign: str | None = None
    pos: Pos = field(default=Pos(0, 0), compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.namespace}:{self.table}" if self.namespace else self.table

    def __str__(self) -> str:
        parts = [str(a) for a in self.args] + [f"{k}={v}" for k, v in self.named]
        text = f"{self.qualified}{self.sign or ''}({', '.join(parts)})"
        return f"{self.modal}[{text}]" if self.modal else text


@dataclass(frozen=True)
class Literal:
    atom: Atom
    negated: bool = False

    @property
    def pos(self) -> Pos:
        return self.atom.pos

    def __str__(self) -> str:
        return f"not {self.atom}" if self.negated else str(self.atom)


@dataclass(frozen=True)
class Rule:
    """``head :- body``; a fact is a rule with an empty body."""

    head: Atom
    body: tuple[Literal, ...] = ()
    text: str = field(default="", compare=False)
    pos: Pos = field(default=Pos(1, 1), compare=False)

    def __str__(self) -> str:
        if not self.body:
            return str(self.head)
        return f"{self.head} :- {', '.join(str(lit) for lit in self.body)}"

    @property
    def source(self) -> str:
        """The text the rule was parsed from, or its canonical form."""
        return self.text or str(self)
