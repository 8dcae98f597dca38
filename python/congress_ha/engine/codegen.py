"""Join plans for rules, compiled to Python functions.

For each rule and each way of entering it (a delta of one body literal, the
head, or nothing for a full evaluation) a planner orders the literals so that
every lookup uses the variables bound so far, and the plan is turned into
nested loops over hash indexes. Generating source once per plan keeps the
per-row cost to a few dictionary operations, which is what makes a 100k-row
load take well under a second.

Every generated function has the signature ``f(rows, sign, out, db, xa, xr)``:
``rows`` are the entering rows, ``sign`` is added to ``out[head_row]`` per
derivation found, ``db`` gives tables and indexes, and ``xa``/``xr`` are the
rows added to and removed from the entering literal's table in the current
transition, so that other occurrences of the same table later in the body
read its old state (the standard delta rule for self-joins).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import builtins as bi
from .analysis import Resolved, RLit
from .ast import Const, Term, Var
from .errors import Overrun, PolicyError

Plan = Callable[..., None]
_EMPTY: frozenset = frozenset()

# When an evaluation must end (monotonic seconds); every loop but the innermost
# of a plan checks it once per row, so a join is stopped within one inner scan.
# One per process: evaluations run one at a time, under their owner's lock.
_DEADLINE = [float("inf")]


def _overrun() -> None:
    raise Overrun("the evaluation ran past its deadline")


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Evaluations inside stop with Overrun after ``seconds`` (None: no limit)."""
    if seconds is None:
        yield
        return
    _DEADLINE[0] = time.monotonic() + seconds
    try:
        yield
    finally:
        _DEADLINE[0] = float("inf")


def past_deadline() -> bool:
    return time.monotonic() > _DEADLINE[0]


def _oldhas(rows: dict, row: tuple, xa: set, xr: set) -> bool:
    return (row in rows and row not in xa) or row in xr


def _oldscan(rows: dict, xa: set, xr: set) -> Iterator[tuple]:
    for row in rows:
        if row not in xa:
            yield row
    yield from xr


def _oldget(index: dict, key: Any, xa: set, xr_index: dict) -> Iterator[tuple]:
    for row in index.get(key, _EMPTY):
        if row not in xa:
            yield row
    yield from xr_index.get(key, ())


def _mkindex(rows: set, cols: tuple[int, ...]) -> dict:
    index: dict = {}
    for row in rows:
        k = row[cols[0]] if len(cols) == 1 else tuple(row[c] for c in cols)
        index.setdefault(k, []).append(row)
    return index


def _negbuiltin(builtin: bi.Builtin, args: tuple) -> bool:
    """True when a builtin literal with all arguments bound holds."""
    result = bi.call(builtin, args[: builtin.num_inputs])
    return result is not None and result == args[builtin.num_inputs:]


# CPython allows 20 statically nested blocks per function.  Filters never
# nest (``if not ...: continue``), so only loops do; past this many loops in one
# function the rest of the plan goes on in a helper function (a closure over
# the plan's tables), whose nesting starts again at zero.  So a rule of any
# length compiles.
MAX_LOOPS_PER_FUNCTION = 12


class _Writer:
    def __init__(self, rule: Resolved) -> None:
        self.rule = rule
        self.funcs: list[list[str]] = [[]]   # [0] is f's body; then helper functions
        self.lines = self.funcs[0]
        self.depth = 1
        self.loops = 0  # loops open in the current function
        self.names: dict[str, str] = {}  # variable -> local name
        self.ns: dict[str, Any] = {
            "_oldhas": _oldhas, "_oldscan": _oldscan, "_oldget": _oldget,
            "_mkindex": _mkindex, "_call": bi.call, "_negbi": _negbuiltin, "_E": _EMPTY,
            "_mono": time.monotonic, "_DL": _DEADLINE, "_overrun": _overrun,
        }
        self.loop_marks: list[tuple[list[str], int, int]] = []  # (lines, index, depth)
        self.prelude: list[str] = []

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def loop(self, header: str) -> None:
        """Open a ``for`` loop, in a new helper function if this one is deep enough."""
        if self.loops >= MAX_LOOPS_PER_FUNCTION:
            self._split()
        self.emit(header)
        self.depth += 1
        self.loops += 1
        self.loop_marks.append((self.lines, len(self.lines), self.depth))

    def require(self, cond: str) -> None:
        """Go on only where ``cond`` holds: skip to the next row, or give up."""
        self.emit(f"if not ({cond}): {'continue' if self.loops else 'return'}")

    def _split(self) -> None:
        params = ", ".join(self.names.values())
        name = f"_s{len(self.funcs)}"
        self.emit(f"{name}({params})")
        self.lines = [f"def {name}({params}):"]
        self.funcs.append(self.lines)
        self.depth, self.loops = 1, 0

    def source(self) -> str:
        # The deadline check, in every loop but the innermost (the last opened):
        # cheap per outer row, and it bounds how long an overrun goes unseen.
        for lines, index, depth in reversed(self.loop_marks[:-1]):
            lines.insert(index, "    " * depth + "if _mono() > _DL[0]: _overrun()")
        self.loop_marks = []
        out = ["def f(rows, sign, out, db, xa, xr):"] + ["    " + p for p in self.prelude]
        for helper in self.funcs[1:]:   # closures over the prelude's names
            out += ["    " + line for line in helper]
        return "\n".join(out + self.funcs[0])

    def const(self, value: Any) -> str:
        name = f"c{len(self.ns)}"
        self.ns[name] = value
        return name

    def expr(self, term: Term) -> str:
        if isinstance(term, Const):
            return self.const(term.value)
        return self.names[term.name]

    def bound(self, term: Term) -> bool:
        return isinstance(term, Const) or term.name in self.names

    def bind_from(self, source: str, args: tuple[Term, ...], skip: set[int]) -> None:
        """Bind the unbound variables of ``args`` from tuple ``source``; check the rest."""
        conds = []
        for j, term in enumerate(args):
            if j in skip:
                continue
            if self.bound(term):
                conds.append(f"{source}[{j}] == {self.expr(term)}")
            else:
                assert isinstance(term, Var)
                local = f"v{len(self.names)}"
                self.names[term.name] = local
                self.emit(f"{local} = {source}[{j}]")
        if conds:
            self.require(" and ".join(conds))

    def row(self, args: tuple[Term, ...]) -> str:
        if not args:
            return "()"
        return "(" + ", ".join(self.expr(a) for a in args) + ",)"


def _free(lit: RLit, names: dict[str, str]) -> set[str]:
    return {t.name for t in lit.args if isinstance(t, Var) and t.name not in names}


def _order(rule: Resolved, first: int | None, names: set[str]) -> list[int]:
    """Greedy join order: filters as soon as they can run, then the most-bound literal."""
    bound = set(names)
    remaining = [i for i in range(len(rule.body)) if i != first]
    order: list[int] = []
    while remaining:
        pick = None
        for i in remaining:
            lit = rule.body[i]
            vs = {t.name for t in lit.args if isinstance(t, Var)}
            if lit.kind in ("neg", "neg-builtin") and vs <= bound:
                pick = i
            elif lit.kind == "builtin":
                assert lit.builtin is not None
                ins = {t.name for t in lit.args[: lit.builtin.num_inputs] if isinstance(t, Var)}
                if ins <= bound:
                    pick = i
            if pick is not None:
                break
        if pick is None:
            best = -1
            for i in remaining:
                lit = rule.body[i]
                if lit.kind != "pos":
                    continue
                score = sum(1 for t in lit.args if isinstance(t, Const) or t.name in bound)
                score = score * 2 + (1 if score == len(lit.args) else 0)
                if score > best:
                    best, pick = score, i
        if pick is None:
            raise RuntimeError(f"no safe evaluation order for rule {rule.text}")
        remaining.remove(pick)
        order.append(pick)
        bound |= {t.name for t in rule.body[pick].args if isinstance(t, Var)}
    return order


def compile_plan(rule: Resolved, entry: int | str | None, trace: bool = False) -> Plan:
    """Compile the rule entered at body literal ``entry``, at the head ("head"), or fully."""
    w = _Writer(rule)
    seed_key = rule.body[entry].key if isinstance(entry, int) else None
    if entry == "head":
        w.loop("for t in rows:")
        w.bind_from("t", rule.head_args, set())
    elif isinstance(entry, int):
        w.loop("for t in rows:")
        w.bind_from("t", rule.body[entry].args, set())
    for i in _order(rule, entry if isinstance(entry, int) else None, set(w.names)):
        lit = rule.body[i]
        old = seed_key is not None and lit.key == seed_key and i > entry  # type: ignore[operator]
        if lit.kind in ("pos", "neg"):
            w.prelude.append(f"R{i} = db.rows(K{i})")
            w.ns[f"K{i}"] = lit.key
        if lit.kind == "neg":
            test = (f"_oldhas(R{i}, {w.row(lit.args)}, xa, xr)" if old
                    else f"{w.row(lit.args)} in R{i}")
            w.require(f"not {test}")
        elif lit.kind == "neg-builtin":
            w.ns[f"B{i}"] = lit.builtin
            w.require(f"not _negbi(B{i}, {w.row(lit.args)})")
        elif lit.kind == "builtin":
            assert lit.builtin is not None
            w.ns[f"B{i}"] = lit.builtin
            n = lit.builtin.num_inputs
            w.emit(f"r{i} = _call(B{i}, {w.row(lit.args[:n])})")
            w.require(f"r{i} is not None")
            w.bind_from(f"r{i}", lit.args[n:], set())
        else:
            cols = tuple(j for j, t in enumerate(lit.args) if w.bound(t))
            if len(cols) == len(lit.args):
                test = (f"_oldhas(R{i}, {w.row(lit.args)}, xa, xr)" if old
                        else f"{w.row(lit.args)} in R{i}")
                w.require(test)
                continue
            if not cols:
                source = f"_oldscan(R{i}, xa, xr)" if old else f"R{i}"
            else:
                key = [w.expr(lit.args[j]) for j in cols]
                keyexpr = key[0] if len(key) == 1 else "(" + ", ".join(key) + ",)"
                w.prelude.append(f"IX{i} = db.index(K{i}, {cols!r})")
                if old:
                    w.prelude.append(f"XR{i} = _mkindex(xr, {cols!r})")
                    source = f"_oldget(IX{i}, {keyexpr}, xa, XR{i})"
                else:
                    source = f"IX{i}.get({keyexpr}, _E)"
            w.loop(f"for t{i} in {source}:")
            w.bind_from(f"t{i}", lit.args, set(cols))
    head = w.row(rule.head_args)
    w.emit(f"h = {head}")
    if trace:
        binding = "{" + ", ".join(f"{n!r}: {loc}" for n, loc in w.names.items()) + "}"
        w.emit(f"if h not in out: out[h] = {binding}")
    else:
        w.emit("out[h] = out.get(h, 0) + sign")
    source = w.source()
    exec(compile(source, f"<rule {rule.text}>", "exec"), w.ns)  # noqa: S102 - our own source
    fn = w.ns["f"]
    fn.source = source  # kept for debugging and tests
    return fn


class Compiled:
    """A resolved rule plus its compiled plans.

    Every plan that evaluation can ask for is compiled here, at once, so that a
    rule that cannot be compiled is refused when it is checked, never found out
    later by a PE in the middle of an evaluation.  Trace plans (used by trace
    and simulate only) differ from these in their last line and are made on
    first use.
    """

    def __init__(self, rule: Resolved) -> None:
        self.rule = rule
        self.head_key = rule.head_key
        self._plans: dict[Any, Plan] = {}
        entries: list[int | str | None] = [None, "head"]
        entries += [i for i, lit in enumerate(rule.body) if lit.key is not None]
        try:
            for entry in entries:
                self.plan(entry)
        except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
            raise PolicyError(f"cannot be compiled ({type(exc).__name__}: {exc}); "
                              "split it into smaller rules", rule.text) from None

    def plan(self, entry: int | str | None, trace: bool = False) -> Plan:
        key = (entry, trace)
        fn = self._plans.get(key)
        if fn is None:
            fn = self._plans[key] = compile_plan(self.rule, entry, trace)
        return fn
