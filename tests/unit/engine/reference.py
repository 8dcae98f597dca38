"""A deliberately naive reference evaluator for a small subset of Congress's Datalog.

Written independently of ``congress_ha.engine`` (nothing is imported from it):
it is the oracle of ``test_engine_differential.py``. It favours being
obviously correct over being fast: every ``select`` re-evaluates the whole
program from scratch, bottom-up, stratum by stratum, each stratum by naive
iteration to a fixpoint.

The subset (one policy, Congress's semantics):

* a rule is ``head :- body``; a fact is a rule with an empty body and
  constant arguments; values are ``int`` or ``str``; variables are ``Var``;
* body literals are positive atoms, negated atoms (``not t(x)``) and the
  builtins ``lt``, ``lteq``, ``gt``, ``gteq``, ``equal`` (two inputs, hold or
  not) and ``plus(x, y, z)`` (inputs ``x``, ``y``; output ``z``, which may
  also be a constant or an already bound variable, then it is a check);
* a builtin whose Python operation would fail, or that mixes ``int`` and
  ``str``, does not hold (no error). ``plus`` of two strings concatenates,
  as Congress's ``lambda x, y: x + y`` does; ``equal`` of an int and a str
  is false;
* safety (Congress): every variable of the head, of a negated literal and of
  a builtin input must be bound by a positive atom, or by the output of a
  builtin whose own inputs are bound;
* every table has one arity among the rules stored (including the new one);
* kind ``nonrecursive``: the dependency graph (positive and negative edges,
  self-loops included) has no cycle; kind ``recursive``: no cycle goes
  through a negated edge (stratified negation);
* set semantics; inserting a rule already stored changes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

COMPARISONS = ("lt", "lteq", "gt", "gteq", "equal")
BUILTIN_ARITY = {"lt": 2, "lteq": 2, "gt": 2, "gteq": 2, "equal": 2, "plus": 3}
BUILTIN_INPUTS = {"lt": 2, "lteq": 2, "gt": 2, "gteq": 2, "equal": 2, "plus": 2}


@dataclass(frozen=True)
class Var:
    name: str


# A term is a Var or a constant (an int or a str).


@dataclass(frozen=True)
class Atom:
    table: str
    args: tuple = ()


@dataclass(frozen=True)
class Lit:
    atom: Atom
    negated: bool = False


@dataclass(frozen=True)
class Builtin:
    name: str
    args: tuple = ()


@dataclass(frozen=True)
class Rule:
    head: Atom
    body: tuple = ()  # of Lit and Builtin


class Invalid(Exception):
    """The reference refuses a rule; ``reasons`` says why (a set of short words)."""

    def __init__(self, reasons: set[str]) -> None:
        super().__init__(", ".join(sorted(reasons)))
        self.reasons = reasons


# -- text ----------------------------------------------------------------------

def term_text(term: object) -> str:
    if isinstance(term, Var):
        return term.name
    if isinstance(term, bool) or not isinstance(term, int | str):
        raise TypeError(f"constants are int or str, not {term!r}")
    return json.dumps(term) if isinstance(term, str) else str(term)


def atom_text(table: str, args: tuple) -> str:
    return f"{table}({', '.join(term_text(a) for a in args)})"


def to_text(rule: Rule) -> str:
    """Congress syntax, e.g. ``p(x, "a") :- q(x, z), not r(z), lt(x, 3)``."""
    head = atom_text(rule.head.table, rule.head.args)
    if not rule.body:
        return head
    parts = []
    for lit in rule.body:
        if isinstance(lit, Builtin):
            parts.append(atom_text(lit.name, lit.args))
        else:
            text = atom_text(lit.atom.table, lit.atom.args)
            parts.append(f"not {text}" if lit.negated else text)
    return f"{head} :- {', '.join(parts)}"


_TOKEN = re.compile(r'\s*(?:(:-)|(not)\b|([A-Za-z_][A-Za-z0-9_]*)|(-?\d+)|("(?:[^"\\]|\\.)*")'
                    r'|([(),]))')


def from_text(text: str) -> Rule:
    """Parse the subset that ``to_text`` writes (for tests and convenience)."""
    tokens = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot parse {text!r} at {pos}")
        pos = m.end()
        kinds = ("arrow", "not", "id", "int", "str", "punct")
        kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
        tokens.append((kind, m.group(m.lastindex)))
    tokens.append(("eof", ""))
    i = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal i
        k, v = tokens[i]
        if k != kind or (value is not None and v != value):
            raise ValueError(f"cannot parse {text!r}: expected {value or kind}, found {v!r}")
        i += 1
        return v

    def atom() -> tuple[str, tuple]:
        nonlocal i
        name = take("id")
        take("punct", "(")
        args: list = []
        while tokens[i] != ("punct", ")"):
            if args:
                take("punct", ",")
            k, v = tokens[i]
            i += 1
            if k == "id":
                args.append(Var(v))
            elif k == "int":
                args.append(int(v))
            elif k == "str":
                args.append(json.loads(v))
            else:
                raise ValueError(f"cannot parse {text!r}: unexpected {v!r}")
        take("punct", ")")
        return name, tuple(args)

    head = Atom(*atom())
    body: list = []
    if tokens[i][0] == "arrow":
        i += 1
        while True:
            negated = tokens[i][0] == "not"
            if negated:
                i += 1
            name, args = atom()
            if name in BUILTIN_ARITY:
                if negated:
                    raise ValueError(f"cannot parse {text!r}: negated builtins are not supported")
                body.append(Builtin(name, args))
            else:
                body.append(Lit(Atom(name, args), negated))
            if tokens[i] != ("punct", ","):
                break
            i += 1
    take("eof")
    return Rule(head, tuple(body))


# -- static checks -------------------------------------------------------------

def _vars(args: tuple) -> set[str]:
    return {a.name for a in args if isinstance(a, Var)}


def _atoms(rule: Rule) -> list[tuple[Atom, bool | None]]:
    """(atom, negated) for the head (negated None) and every table literal."""
    out: list[tuple[Atom, bool | None]] = [(rule.head, None)]
    out += [(lit.atom, lit.negated) for lit in rule.body if isinstance(lit, Lit)]
    return out


def bound_variables(rule: Rule) -> set[str]:
    """Variables bound by positive atoms and, transitively, by builtin outputs."""
    bound: set[str] = set()
    for lit in rule.body:
        if isinstance(lit, Lit) and not lit.negated:
            bound |= _vars(lit.atom.args)
    changed = True
    while changed:
        changed = False
        for lit in rule.body:
            if isinstance(lit, Builtin):
                inputs = lit.args[: BUILTIN_INPUTS[lit.name]]
                if _vars(inputs) <= bound and not _vars(lit.args) <= bound:
                    bound |= _vars(lit.args)
                    changed = True
    return bound


def is_safe(rule: Rule) -> bool:
    bound = bound_variables(rule)
    needed = _vars(rule.head.args)
    for lit in rule.body:
        if isinstance(lit, Builtin):
            needed |= _vars(lit.args[: BUILTIN_INPUTS[lit.name]])
        elif lit.negated:
            needed |= _vars(lit.atom.args)
    return needed <= bound


def arity_conflicts(rules: list[Rule]) -> set[str]:
    """Tables used with more than one arity among ``rules``."""
    seen: dict[str, set[int]] = {}
    for rule in rules:
        for atom, _ in _atoms(rule):
            seen.setdefault(atom.table, set()).add(len(atom.args))
    return {table for table, widths in seen.items() if len(widths) > 1}


def edges(rules: list[Rule]) -> set[tuple[str, str, bool]]:
    """(head table, body table, negated) for every table literal of every rule."""
    return {(r.head.table, lit.atom.table, lit.negated)
            for r in rules for lit in r.body if isinstance(lit, Lit)}


def reachable(graph: set[tuple[str, str, bool]], start: str) -> set[str]:
    """Tables reachable from ``start`` by one or more edges."""
    seen: set[str] = set()
    todo = [b for h, b, _ in graph if h == start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += [b for h, b, _ in graph if h == node]
    return seen


def has_cycle(rules: list[Rule]) -> bool:
    graph = edges(rules)
    return any(h in reachable(graph, h) for h, _, _ in graph)


def has_negative_cycle(rules: list[Rule]) -> bool:
    # An edge h -> not b lies on a cycle iff h is reachable from b.
    graph = edges(rules)
    return any(neg and (b == h or h in reachable(graph, b)) for h, b, neg in graph)


def builtin_shape_ok(rule: Rule) -> bool:
    return all(len(lit.args) == BUILTIN_ARITY.get(lit.name, -1)
               for lit in rule.body if isinstance(lit, Builtin))


# -- evaluation ----------------------------------------------------------------

def _same_kind(a: object, b: object) -> bool:
    return (type(a) is int and type(b) is int) or (type(a) is str and type(b) is str)


def builtin_outputs(name: str, inputs: tuple) -> tuple | None:
    """The builtin's outputs (``()`` for a comparison that holds), or None if it fails."""
    a, b = inputs
    if name == "equal":
        return () if _same_kind(a, b) and a == b else None
    if not _same_kind(a, b):
        return None
    if name == "plus":
        return (a + b,)
    holds = {"lt": a < b, "lteq": a <= b, "gt": a > b, "gteq": a >= b}[name]
    return () if holds else None


def _value(term: object, env: dict[str, object]) -> object:
    return env[term.name] if isinstance(term, Var) else term


def _unify(args: tuple, row: tuple, env: dict[str, object]) -> dict[str, object] | None:
    """``env`` extended so that ``args`` matches ``row``, or None."""
    if len(args) != len(row):
        return None
    out = dict(env)
    for term, value in zip(args, row, strict=True):
        if isinstance(term, Var):
            if term.name in out:
                if not (_same_kind(out[term.name], value) and out[term.name] == value):
                    return None
            else:
                out[term.name] = value
        elif not (_same_kind(term, value) and term == value):
            return None
    return out


def _ground(args: tuple, env: dict[str, object]) -> tuple:
    return tuple(_value(a, env) for a in args)


def fire(rule: Rule, db: dict[str, set[tuple]]) -> set[tuple]:
    """Head rows the rule derives from ``db`` (the rule must be safe)."""
    envs: list[dict[str, object]] = [{}]
    for lit in rule.body:
        if isinstance(lit, Lit) and not lit.negated:
            envs = [e for env in envs for row in db.get(lit.atom.table, set())
                    if (e := _unify(lit.atom.args, row, env)) is not None]
    # Builtins, each as soon as its inputs are bound (the bound set is the same
    # for every env: it depends only on the rule).
    bound = {a.name for lit in rule.body if isinstance(lit, Lit) and not lit.negated
             for a in lit.atom.args if isinstance(a, Var)}
    pending = [lit for lit in rule.body if isinstance(lit, Builtin)]
    while pending:
        ready = next(b for b in pending if _vars(b.args[: BUILTIN_INPUTS[b.name]]) <= bound)
        pending.remove(ready)
        n = BUILTIN_INPUTS[ready.name]
        new_envs = []
        for env in envs:
            outputs = builtin_outputs(ready.name, _ground(ready.args[:n], env))
            if outputs is None:
                continue
            e = _unify(ready.args[n:], outputs, env)
            if e is not None:
                new_envs.append(e)
        envs = new_envs
        bound |= _vars(ready.args)
    for lit in rule.body:
        if isinstance(lit, Lit) and lit.negated:
            rows = db.get(lit.atom.table, set())
            envs = [env for env in envs if _ground(lit.atom.args, env) not in rows]
    return {_ground(rule.head.args, env) for env in envs}


def strata(rules: list[Rule]) -> dict[str, int]:
    """Stratum of every table: >= a positive body table's, > a negated body table's."""
    tables = {atom.table for r in rules for atom, _ in _atoms(r)}
    level = dict.fromkeys(tables, 0)
    for _ in range(len(tables) + 2):
        changed = False
        for r in rules:
            for lit in r.body:
                if isinstance(lit, Lit):
                    need = level[lit.atom.table] + (1 if lit.negated else 0)
                    if level[r.head.table] < need:
                        level[r.head.table] = need
                        changed = True
        if not changed:
            return level
    raise ValueError("negation is not stratified")


def evaluate(rules: list[Rule]) -> dict[str, set[tuple]]:
    """Every table's rows: strata in order, each iterated naively to a fixpoint."""
    level = strata(rules)
    db: dict[str, set[tuple]] = {t: set() for t in level}
    for n in sorted(set(level.values())):
        layer = [r for r in rules if level[r.head.table] == n]
        while True:
            changed = False
            for r in layer:
                new = fire(r, db) - db[r.head.table]
                if new:
                    db[r.head.table] |= new
                    changed = True
            if not changed:
                break
    return db


class Reference:
    """One policy of the given kind, re-evaluated from scratch on every ``select``."""

    def __init__(self, kind: str = "nonrecursive") -> None:
        assert kind in ("nonrecursive", "recursive")
        self.kind = kind
        self.rules: list[Rule] = []  # in insertion order, no duplicates

    @staticmethod
    def _rule(rule: Rule | str) -> Rule:
        return from_text(rule) if isinstance(rule, str) else rule

    def problems(self, rule: Rule | str) -> set[str]:
        """Why inserting ``rule`` now would be refused (empty: it is valid)."""
        rule = self._rule(rule)
        if rule in self.rules:
            return set()
        reasons = set()
        if not builtin_shape_ok(rule):
            reasons.add("builtin")
        if not is_safe(rule):
            reasons.add("unsafe")
        program = [*self.rules, rule]
        if arity_conflicts(program):
            reasons.add("arity")
        if self.kind == "nonrecursive" and has_cycle(program):
            reasons.add("recursion")
        if has_negative_cycle(program):
            reasons.add("negation")
        return reasons

    def insert_rule(self, rule: Rule | str) -> Rule:
        rule = self._rule(rule)
        reasons = self.problems(rule)
        if reasons:
            raise Invalid(reasons)
        if rule not in self.rules:
            self.rules.append(rule)
        return rule

    def delete_rule(self, rule: Rule | str) -> None:
        self.rules.remove(self._rule(rule))

    def tables(self) -> set[str]:
        return {atom.table for r in self.rules for atom, _ in _atoms(r)}

    def evaluate(self) -> dict[str, set[tuple]]:
        return evaluate(self.rules)

    def select(self, table: str) -> set[tuple]:
        return set(self.evaluate().get(table, set()))
