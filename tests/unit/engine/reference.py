"""A deliberately naive reference evaluator for a subset of Congress's Datalog.

Written independently of ``congress_ha.engine`` (nothing is imported from it):
it is the oracle of ``test_engine_differential.py``. It favours being
obviously correct over being fast: every ``select`` re-evaluates the whole
program from scratch, bottom-up, stratum by stratum, each stratum by naive
iteration to a fixpoint.

The subset (one policy, plus datasource tables; Congress's semantics):

* **Values are typed**, as Congress's ``ObjectConstant`` (type INTEGER, FLOAT
  or STRING, and equality includes the type): the reference holds every
  value as a pair ``(kind, value)`` with kind ``"int"``, ``"float"`` or
  ``"str"`` (``typed(2) == ("int", 2)``, ``typed(2.0) == ("float", 2.0)``),
  so ``2`` and ``2.0`` never unify, never join, never match a negation, and
  the facts ``p(2)`` and ``p(2.0)`` are two rows. Constants in rules are such
  pairs too; rows are tuples of them.
* a rule is ``head :- body``; a fact is a rule with an empty body and
  constant arguments; variables are ``Var``. A variable named ``_`` or
  ``_x`` is an ordinary variable, as in Congress (its grammar's ``ID``
  starts with a letter, ``_`` or ``.``; compile.py makes nothing of a
  leading ``_``): two ``_`` in one rule are one variable.
* body literals are positive atoms, negated atoms (``not t(x)``), builtins
  and negated builtins (``not lt(x, 1)``). An atom may name a datasource
  table (``ds:t(x, y)``); datasource tables have a schema (column names)
  and their rows are given (``Reference.data``), never derived. A
  datasource atom may give columns by name or number (``ds:t(a=x)``,
  ``ds:t(x, 1=y)``, positional ones first); the columns it omits get fresh
  variables, as in Congress's ``eliminate_column_references_and_pad_positional``.
  In a negated atom a fresh variable means "any value" (``not ds:t(a=x)``:
  no row has ``a`` = x), the engine's documented extension (Congress refuses
  that rule as unsafe). Without column references the number of arguments
  must be the schema's (the engine refuses ``ds:t(x)``; Congress would pad it).
* builtins compute on plain Python values, as Congress's
  ``topdown._top_down_builtin`` does: ``lt lteq gt gteq equal`` (two inputs,
  hold or not), ``plus minus mul div max concat`` (two inputs, one output;
  ``div`` of two ints is ``//``, else ``/``), ``float int len`` (one input,
  one output). A builtin whose Python operation raises does not hold
  (``lt("a", 1)``, ``div(1, 0)``); ``equal(2, 2.0)`` and ``lt(1, 2.5)`` hold.
  An output is typed by its Python type (``plus(1, 1.0, z)``: z = 2.0, a
  float) and then unified, type included, with the output argument, which
  may be a constant or a bound variable (``plus(1, 1, 2.0)`` does not hold);
* safety (Congress's ``reorder_for_safety``): every variable of the head, of
  a negated literal (fresh ones excepted), of a negated builtin and of a
  builtin input must be bound by a positive atom, or by the output of a
  builtin whose own inputs are bound;
* every policy table has one arity among the rules stored (including the
  new one); a datasource atom has the schema's arity;
* kind ``nonrecursive``: the dependency graph (positive and negative edges,
  self-loops included) has no cycle; kind ``recursive``: no cycle goes
  through a negated edge (stratified negation);
* set semantics; inserting a rule already stored changes nothing;
* ``simulate``: Congress's ``Runtime.project``/``project_updates``: ``t+(row)``
  inserts the fact into the table's fact set (nothing if it is there
  already), ``t-(row)`` deletes it (nothing if it is not a fact; a row
  derived by a rule stays), in order, on a copy; for ``ds:t`` the fact set
  is the datasource's rows.
"""

from __future__ import annotations

import copy
import json
import operator
import re
from dataclasses import dataclass, field

COMPARISONS = ("lt", "lteq", "gt", "gteq", "equal")

# name -> (arity, number of inputs, Python code): Congress's builtin.py.
BUILTINS = {
    "lt": (2, 2, operator.lt),
    "lteq": (2, 2, operator.le),
    "gt": (2, 2, operator.gt),
    "gteq": (2, 2, operator.ge),
    "equal": (2, 2, operator.eq),
    "max": (3, 2, max),
    "plus": (3, 2, operator.add),
    "minus": (3, 2, operator.sub),
    "mul": (3, 2, operator.mul),
    "div": (3, 2, lambda x, y: x // y if type(x) is int and type(y) is int else x / y),
    "concat": (3, 2, operator.add),
    "len": (2, 1, len),
    "float": (2, 1, float),
    "int": (2, 1, int),
}
BUILTIN_ARITY = {name: spec[0] for name, spec in BUILTINS.items()}
BUILTIN_INPUTS = {name: spec[1] for name, spec in BUILTINS.items()}
KINDS = {int: "int", float: "float", str: "str"}


def typed(value: object) -> tuple[str, object]:
    """A plain Python value as the reference holds it: ``(kind, value)``."""
    if isinstance(value, bool):
        raise TypeError(f"no Datalog constant is a bool: {value!r}")
    for python, kind in KINDS.items():
        if isinstance(value, python):
            return (kind, python(value))
    raise TypeError(f"constants are int, float or str, not {value!r}")


def typed_row(row: tuple) -> tuple:
    return tuple(typed(v) for v in row)


def plain(value: tuple[str, object]) -> object:
    return value[1]


def plain_row(row: tuple) -> tuple:
    return tuple(plain(v) for v in row)


def is_const(term: object) -> bool:
    return isinstance(term, tuple) and len(term) == 2 and term[0] in KINDS.values()


@dataclass(frozen=True)
class Var:
    name: str


# A term is a Var or a typed constant (a pair from ``typed``).


@dataclass(frozen=True)
class Atom:
    table: str
    args: tuple = ()
    ns: str | None = None  # a datasource (``ds:t``); None: the policy's own table
    named: tuple = ()  # ((column name or number, term), ...), after ``args``

    @property
    def key(self) -> str:
        """The table's name in ``evaluate``'s result: ``t`` or ``ds:t``."""
        return f"{self.ns}:{self.table}" if self.ns else self.table


@dataclass(frozen=True)
class Lit:
    atom: Atom
    negated: bool = False


@dataclass(frozen=True)
class Builtin:
    name: str
    args: tuple = ()
    negated: bool = False


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
    if not is_const(term):
        raise TypeError(f"a term is a Var or a typed constant, not {term!r}")
    kind, value = term
    if kind == "str":
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def atom_text(table: str, args: tuple, named: tuple = ()) -> str:
    parts = [term_text(a) for a in args] + [f"{col}={term_text(t)}" for col, t in named]
    return f"{table}({', '.join(parts)})"


def to_text(rule: Rule) -> str:
    """Congress syntax, e.g. ``p(x, "a") :- q(x, z), not ds:t(a=z), lt(x, 2.5)``."""
    head = atom_text(rule.head.key, rule.head.args)
    if not rule.body:
        return head
    parts = []
    for lit in rule.body:
        if isinstance(lit, Builtin):
            text = atom_text(lit.name, lit.args)
        else:
            text = atom_text(lit.atom.key, lit.atom.args, lit.atom.named)
        parts.append(f"not {text}" if lit.negated else text)
    return f"{head} :- {', '.join(parts)}"


_TOKEN = re.compile(r'\s*(?:(:-)|(not)\b|([A-Za-z_][A-Za-z0-9_]*)|(-?\d+\.\d*)|(-?\d+)'
                    r'|("(?:[^"\\]|\\.)*")|([(),:=]))')


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot parse {text!r} at {pos}")
        pos = m.end()
        kinds = ("arrow", "not", "id", "float", "int", "str", "punct")
        kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
        tokens.append((kind, m.group(m.lastindex)))
    tokens.append(("eof", ""))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def take(self, kind: str, value: str | None = None) -> str:
        k, v = self.tokens[self.i]
        if k != kind or (value is not None and v != value):
            raise ValueError(f"cannot parse {self.text!r}: expected {value or kind}, "
                             f"found {v!r}")
        self.i += 1
        return v

    def at(self, kind: str, value: str | None = None, ahead: int = 0) -> bool:
        k, v = self.tokens[min(self.i + ahead, len(self.tokens) - 1)]
        return k == kind and (value is None or v == value)

    def term(self) -> object:
        k, v = self.tokens[self.i]
        self.i += 1
        if k == "id":
            return Var(v)
        if k == "int":
            return typed(int(v))
        if k == "float":
            return typed(float(v))
        if k == "str":
            return typed(json.loads(v))
        raise ValueError(f"cannot parse {self.text!r}: unexpected {v!r}")

    def atom(self) -> tuple[str | None, str, tuple, tuple]:
        name = self.take("id")
        ns = None
        if self.at("punct", ":"):
            self.i += 1
            ns, name = name, self.take("id")
        self.take("punct", "(")
        args: list = []
        named: list = []
        while not self.at("punct", ")"):
            if args or named:
                self.take("punct", ",")
            if self.at("punct", "=", 1):
                k, column = self.tokens[self.i]
                self.i += 2
                named.append((int(column) if k == "int" else column, self.term()))
            else:
                if named:
                    raise ValueError(f"cannot parse {self.text!r}: positional after named")
                args.append(self.term())
        self.take("punct", ")")
        return ns, name, tuple(args), tuple(named)

    def rule(self) -> Rule:
        ns, name, args, named = self.atom()
        if ns is not None or named:
            raise ValueError(f"cannot parse {self.text!r}: the head is a plain atom")
        head = Atom(name, args)
        body: list = []
        if self.at("arrow"):
            self.i += 1
            while True:
                negated = self.at("not")
                if negated:
                    self.i += 1
                ns, name, args, named = self.atom()
                if ns is None and not named and BUILTIN_ARITY.get(name) == len(args):
                    body.append(Builtin(name, args, negated))
                else:
                    body.append(Lit(Atom(name, args, ns, named), negated))
                if not self.at("punct", ","):
                    break
                self.i += 1
        self.take("eof")
        return Rule(head, tuple(body))


def from_text(text: str) -> Rule:
    """Parse the subset that ``to_text`` writes (for tests and convenience)."""
    return _Parser(text).rule()


def atom_from_text(text: str) -> Atom:
    """Parse one atom (a query), e.g. ``ds:t(x, b=2.0)``."""
    parser = _Parser(text)
    ns, name, args, named = parser.atom()
    parser.take("eof")
    return Atom(name, args, ns, named)


# -- column references -----------------------------------------------------------

FRESH = "?"  # prefix of the variables made up for omitted columns; never user-written


def positional(atom: Atom, schemas: dict[str, list[str]], index: int = 0) -> tuple | None:
    """``atom``'s arguments with column references resolved, or None if they do not fit.

    Omitted columns get fresh variables ``?<index>.<column>`` (``index``:
    the literal's position, so that two literals never share one).
    """
    if not atom.named:
        return atom.args
    columns = schemas.get(atom.key)
    if columns is None or len(atom.args) > len(columns):
        return None
    args: list = list(atom.args) + [None] * (len(columns) - len(atom.args))
    for column, term in atom.named:
        position = column if isinstance(column, int) else (
            columns.index(column) if column in columns else None)
        if position is None or position >= len(columns) or args[position] is not None:
            return None
        args[position] = term
    return tuple(a if a is not None else Var(f"{FRESH}{index}.{j}") for j, a in enumerate(args))


def is_fresh(name: str) -> bool:
    return name.startswith(FRESH)


# -- static checks -------------------------------------------------------------

def _vars(args: tuple) -> set[str]:
    return {a.name for a in args if isinstance(a, Var)}


@dataclass(frozen=True)
class _Resolved:
    """A rule with every atom's arguments positional (see ``positional``)."""

    head: Atom
    pos: tuple  # of (key, args)
    neg: tuple  # of (key, args)
    builtins: tuple  # of Builtin, not negated
    negated_builtins: tuple  # of Builtin
    bad_columns: bool = False


def resolve(rule: Rule, schemas: dict[str, list[str]]) -> _Resolved:
    pos, neg, bis, nbis = [], [], [], []
    bad = False
    for i, lit in enumerate(rule.body):
        if isinstance(lit, Builtin):
            (nbis if lit.negated else bis).append(lit)
            continue
        args = positional(lit.atom, schemas, i)
        if args is None:
            bad = True
            args = lit.atom.args
        (neg if lit.negated else pos).append((lit.atom.key, args))
    return _Resolved(rule.head, tuple(pos), tuple(neg), tuple(bis), tuple(nbis), bad)


def _inputs(b: Builtin) -> tuple:
    return b.args[: BUILTIN_INPUTS[b.name]]


def bound_variables(r: _Resolved) -> set[str]:
    """Variables bound by positive atoms and, transitively, by builtin outputs."""
    bound: set[str] = set()
    for _, args in r.pos:
        bound |= _vars(args)
    changed = True
    while changed:
        changed = False
        for b in r.builtins:
            if _vars(_inputs(b)) <= bound and not _vars(b.args) <= bound:
                bound |= _vars(b.args)
                changed = True
    return bound


def is_safe(r: _Resolved) -> bool:
    needed = _vars(r.head.args)
    for b in r.builtins:
        needed |= _vars(_inputs(b))
    for b in r.negated_builtins:
        needed |= _vars(b.args)
    for _, args in r.neg:
        needed |= {v for v in _vars(args) if not is_fresh(v)}
    return needed <= bound_variables(r)


def _widths(r: _Resolved) -> list[tuple[str, int]]:
    return [(r.head.key, len(r.head.args))] + [(k, len(a)) for k, a in r.pos + r.neg]


def arity_conflicts(program: list[_Resolved], schemas: dict[str, list[str]]) -> set[str]:
    """Tables used with more than one arity, or a datasource table not at its schema's."""
    seen: dict[str, set[int]] = {}
    for r in program:
        for key, width in _widths(r):
            seen.setdefault(key, set()).add(width)
    return {key for key, widths in seen.items()
            if len(widths) > 1 or (key in schemas and widths != {len(schemas[key])})}


def edges(program: list[_Resolved]) -> set[tuple[str, str, bool]]:
    """(head table, body table, negated) for every table literal of every rule."""
    return ({(r.head.key, key, False) for r in program for key, _ in r.pos}
            | {(r.head.key, key, True) for r in program for key, _ in r.neg})


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


def has_cycle(program: list[_Resolved]) -> bool:
    graph = edges(program)
    return any(h in reachable(graph, h) for h, _, _ in graph)


def has_negative_cycle(program: list[_Resolved]) -> bool:
    # An edge h -> not b lies on a cycle iff h is reachable from b.
    graph = edges(program)
    return any(neg and (b == h or h in reachable(graph, b)) for h, b, neg in graph)


def builtin_shape_ok(rule: Rule) -> bool:
    return all(len(lit.args) == BUILTIN_ARITY.get(lit.name, -1)
               for lit in rule.body if isinstance(lit, Builtin))


# -- evaluation ----------------------------------------------------------------

def builtin_outputs(name: str, inputs: tuple) -> tuple | None:
    """The builtin's typed outputs (``()`` for a comparison that holds), or None.

    Congress: the code runs on the plain values; if it raises, the builtin
    does not hold; a result is typed by its Python type.
    """
    arity, n_inputs, code = BUILTINS[name]
    try:
        result = code(*(plain(v) for v in inputs))
    except Exception:  # noqa: BLE001 - a builtin that raises does not hold
        return None
    if arity == n_inputs:
        return () if result is True else None
    try:
        return (typed(result),)
    except TypeError:
        return None


def _value(term: object, env: dict[str, object]) -> object:
    return env[term.name] if isinstance(term, Var) else term


def _unify(args: tuple, row: tuple, env: dict[str, object]) -> dict[str, object] | None:
    """``env`` extended so that ``args`` matches ``row`` (types included), or None."""
    if len(args) != len(row):
        return None
    out = dict(env)
    for term, value in zip(args, row, strict=True):
        if isinstance(term, Var):
            if term.name in out:
                if out[term.name] != value:
                    return None
            else:
                out[term.name] = value
        elif term != value:
            return None
    return out


def _ground(args: tuple, env: dict[str, object]) -> tuple:
    return tuple(_value(a, env) for a in args)


def _builtin_holds(b: Builtin, env: dict[str, object]) -> dict[str, object] | None:
    n = BUILTIN_INPUTS[b.name]
    outputs = builtin_outputs(b.name, _ground(b.args[:n], env))
    return None if outputs is None else _unify(b.args[n:], outputs, env)


def fire(r: _Resolved, db: dict[str, set[tuple]]) -> set[tuple]:
    """Head rows the rule derives from ``db`` (the rule must be safe)."""
    envs: list[dict[str, object]] = [{}]
    for key, args in r.pos:
        envs = [e for env in envs for row in db.get(key, set())
                if (e := _unify(args, row, env)) is not None]
    # Builtins, each as soon as its inputs are bound (the bound set is the same
    # for every env: it depends only on the rule).
    bound = {v for _, args in r.pos for v in _vars(args)}
    pending = list(r.builtins)
    while pending:
        ready = next(b for b in pending if _vars(_inputs(b)) <= bound)
        pending.remove(ready)
        envs = [e for env in envs if (e := _builtin_holds(ready, env)) is not None]
        bound |= _vars(ready.args)
    for b in r.negated_builtins:
        envs = [env for env in envs if _builtin_holds(b, env) is None]
    for key, args in r.neg:
        # Fresh variables are unbound here: "some row matches" is the negation's test.
        rows = db.get(key, set())
        envs = [env for env in envs if not any(_unify(args, row, env) is not None
                                               for row in rows)]
    return {_ground(r.head.args, env) for env in envs}


def strata(program: list[_Resolved]) -> dict[str, int]:
    """Stratum of every table: >= a positive body table's, > a negated body table's."""
    tables = {key for r in program for key, _ in _widths(r)}
    level = dict.fromkeys(tables, 0)
    for _ in range(len(tables) + 2):
        changed = False
        for r in program:
            for key, negated in [(k, False) for k, _ in r.pos] + [(k, True) for k, _ in r.neg]:
                need = level[key] + (1 if negated else 0)
                if level[r.head.key] < need:
                    level[r.head.key] = need
                    changed = True
        if not changed:
            return level
    raise ValueError("negation is not stratified")


def evaluate(program: list[_Resolved], data: dict[str, set[tuple]]) -> dict[str, set[tuple]]:
    """Every table's rows: strata in order, each iterated naively to a fixpoint."""
    level = strata(program)
    db: dict[str, set[tuple]] = {t: set() for t in level}
    for key, rows in data.items():
        db[key] = set(rows)
    for n in sorted(set(level.values())):
        layer = [r for r in program if level[r.head.key] == n]
        while True:
            changed = False
            for r in layer:
                new = fire(r, db) - db[r.head.key]
                if new:
                    db[r.head.key] |= new
                    changed = True
            if not changed:
                break
    return db


def matches(atom: Atom, rows: set[tuple], schemas: dict[str, list[str]]) -> set[tuple]:
    """The rows that the (query) atom matches."""
    args = positional(atom, schemas)
    assert args is not None, atom
    return {row for row in rows if _unify(args, row, {}) is not None}


@dataclass
class Reference:
    """One policy of the given kind, re-evaluated from scratch on every ``select``.

    ``schemas``: datasource tables by key (``"ds:t"``) and their column
    names; ``data``: their rows (typed), changed with ``apply_delta`` and
    ``replace_table``. ``delete_policy`` forgets the rules, not the data.
    """

    kind: str = "nonrecursive"
    schemas: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, set[tuple]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)  # in insertion order, no duplicates

    def __post_init__(self) -> None:
        assert self.kind in ("nonrecursive", "recursive")
        for key in self.schemas:
            self.data.setdefault(key, set())

    @staticmethod
    def _rule(rule: Rule | str) -> Rule:
        return from_text(rule) if isinstance(rule, str) else rule

    def _program(self, rules: list[Rule] | None = None) -> list[_Resolved]:
        return [resolve(r, self.schemas) for r in (self.rules if rules is None else rules)]

    def problems(self, rule: Rule | str) -> set[str]:
        """Why inserting ``rule`` now would be refused (empty: it is valid)."""
        rule = self._rule(rule)
        if rule in self.rules:
            return set()
        reasons = set()
        resolved = resolve(rule, self.schemas)
        if resolved.bad_columns:
            reasons.add("columns")
        if not builtin_shape_ok(rule):
            reasons.add("builtin")
        if not is_safe(resolved):
            reasons.add("unsafe")
        program = [*self._program(), resolved]
        if arity_conflicts(program, self.schemas):
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

    def delete_policy(self) -> None:
        self.rules = []

    def apply_delta(self, key: str, added: list[tuple], removed: list[tuple]) -> None:
        """Removals first, then additions (rows typed)."""
        self.data[key] = (self.data.get(key, set()) - set(removed)) | set(added)

    def replace_table(self, key: str, rows: list[tuple]) -> None:
        self.data[key] = set(rows)

    def arity(self, key: str) -> int | None:
        """The table's arity: its schema's, or the one the stored rules use."""
        if key in self.schemas:
            return len(self.schemas[key])
        widths = {w for r in self._program() for k, w in _widths(r) if k == key}
        return next(iter(widths)) if widths else None

    def tables(self) -> set[str]:
        """The policy's tables: heads and the policy tables that bodies read."""
        return {key for r in self._program() for key, _ in _widths(r) if ":" not in key}

    def evaluate(self) -> dict[str, set[tuple]]:
        return evaluate(self._program(), self.data)

    def select(self, table: str) -> set[tuple]:
        return set(self.evaluate().get(table, set()))

    def query(self, atom: Atom | str) -> set[tuple]:
        atom = atom_from_text(atom) if isinstance(atom, str) else atom
        return matches(atom, self.evaluate().get(atom.key, set()), self.schemas)

    def simulate(self, atom: Atom | str, updates: list[tuple[str, str, tuple]]) -> set[tuple]:
        """``query(atom)`` after ``updates``, (sign, key, typed row)s, on a copy."""
        other = copy.deepcopy(self)
        for sign, key, row in updates:
            if key in other.schemas:
                other.apply_delta(key, [row] if sign == "+" else [], [row] if sign == "-" else [])
                continue
            fact = Rule(Atom(key, row))
            if sign == "+" and fact not in other.rules:
                other.rules.append(fact)
            elif sign == "-" and fact in other.rules:
                other.rules.remove(fact)
        return other.query(atom)
