"""Differential tests: the incremental engine against a naive reference evaluator.

Random operation sequences (insert a fact, insert a rule, delete a stored rule
or fact, delete and re-create the policy) run on ``congress_ha.engine.Engine``
and on ``reference.Reference`` (a from-scratch, bottom-up, stratified
evaluator written independently of the engine). After every step every table
of the vocabulary must hold the same rows in both, ``tables`` and ``rules``
must agree, and a rule must be refused by the engine exactly when the
reference considers it invalid, for one of the reasons the reference gives.

Vocabulary: tables p, q, r, s, t with an arity (1 or 2) per table, drawn per
test case and drawn again at every re-creation of the policy (so a table may
come back with another arity); constants 0..3, "a", "b"; variables x, y, z;
builtins lt, lteq, gt, gteq, equal and plus. About one rule in six uses one
table at the other arity, which the engine must refuse exactly when the
table is in use at its old arity by the rules stored.

Known engine discrepancies: none found so far (see the report that came with
this file). Nothing is excluded from the strategies to hide a discrepancy;
the only restrictions are the ones that keep programs meaningful: in a
``recursive`` policy ``plus`` appears only in rules that read no table of
their own recursion level (a ``plus`` inside recursion can derive infinitely
many rows, e.g. ``p(z) :- p(x), plus(x, 1, z)``), and no anonymous
variables, floats, negated builtins or column references are generated.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from congress_ha.engine import Engine, PolicyError


def _load_reference():
    # Loaded by path, so the test works whatever pytest's import mode and
    # whether or not this directory is a package.
    name = "congress_ha_tests_engine_reference"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("reference.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


ref = _load_reference()
Atom, Builtin, Lit, Reference, Rule, Var = (ref.Atom, ref.Builtin, ref.Lit, ref.Reference,
                                            ref.Rule, ref.Var)
to_text = ref.to_text

TABLES = ("p", "q", "r", "s", "t")
VARS = ("x", "y", "z")
CONSTS = (0, 1, 2, 3, "a", "b")
COMPARISONS = ("lt", "lteq", "gt", "gteq", "equal")
MAX_OPS = 15

CONST = st.sampled_from(CONSTS)
ANY_VAR = st.sampled_from(VARS).map(Var)


@dataclass(frozen=True)
class Shape:
    """Arity per table and the level that says which tables a rule may read."""

    arity: dict[str, int]
    level: dict[str, int]


@dataclass(frozen=True)
class Mode:
    kind: str  # the policy kind
    free: bool  # any table in any body (cycles, unstratified negation) and unsafe rules


@st.composite
def shapes(draw, mode: Mode) -> Shape:
    arity = {t: draw(st.integers(1, 2)) for t in TABLES}
    if mode.kind == "nonrecursive":
        # A total order: a rule reads only tables strictly below its head.
        order = draw(st.permutations(TABLES))
        level = {t: i for i, t in enumerate(order)}
    else:
        # Levels: positive atoms at the head's level or below (so recursion,
        # also mutual, within a level), negated atoms strictly below.
        level = {t: draw(st.integers(0, 2)) for t in TABLES}
    return Shape(arity, level)


def _term(draw, pool: list[str]):
    """A constant or one of the variables in ``pool``."""
    if pool:
        return draw(st.one_of(st.sampled_from(sorted(pool)).map(Var), CONST))
    return draw(CONST)


@st.composite
def facts(draw, shape: Shape):
    arity = dict(shape.arity)
    flip = draw(st.sampled_from((None,) * 5 + TABLES))
    if flip is not None:
        arity[flip] = 3 - arity[flip]
    table = draw(st.sampled_from(TABLES))
    return Rule(Atom(table, tuple(draw(CONST) for _ in range(arity[table]))))


@st.composite
def rules(draw, shape: Shape, mode: Mode):
    arity = dict(shape.arity)
    flip = draw(st.sampled_from((None,) * 5 + TABLES))
    if flip is not None:
        arity[flip] = 3 - arity[flip]
    head = draw(st.sampled_from(TABLES))
    level = shape.level
    unsafe = mode.free and draw(st.integers(0, 3)) == 0
    if mode.free:
        plus_ok = mode.kind == "nonrecursive"  # an accepted program has no cycle
        use_plus = plus_ok and draw(st.booleans())
        positive = negative = list(TABLES)
    else:
        use_plus = draw(st.booleans())
        below = [t for t in TABLES if level[t] < level[head]]
        negative = below
        if mode.kind == "nonrecursive" or use_plus:
            positive = below
        else:
            positive = [t for t in TABLES if level[t] <= level[head]]

    def atom(table: str, pool: list[str]):
        return Atom(table, tuple(_term(draw, pool) for _ in range(arity[table])))

    body: list = []
    n_pos = draw(st.integers(0, 3)) if positive else 0
    for _ in range(n_pos):
        body.append(Lit(atom(draw(st.sampled_from(positive)), list(VARS))))
    bound = {a.name for lit in body for a in lit.atom.args if isinstance(a, Var)}
    # The pool for terms that must be bound (head, negations, builtin inputs).
    pool = (lambda: list(VARS)) if unsafe else (lambda: sorted(bound))

    for _ in range(draw(st.integers(0, 2))):
        names = COMPARISONS + (("plus",) if use_plus else ())
        name = draw(st.sampled_from(names))
        args = [_term(draw, pool()), _term(draw, pool())]
        if name == "plus":
            out = draw(st.one_of(ANY_VAR, CONST))
            args.append(out)
            if isinstance(out, Var):
                bound.add(out.name)
        body.append(Builtin(name, tuple(args)))
    if negative:
        for _ in range(draw(st.integers(0, 2))):
            body.append(Lit(atom(draw(st.sampled_from(negative)), pool()), negated=True))
    head_atom = atom(head, pool())
    body = draw(st.permutations(body)) if body else []
    return Rule(head_atom, tuple(body))


@st.composite
def scenarios(draw, mode: Mode):
    """(operations, shape of each epoch): the shape changes at every re-creation."""
    shape = draw(shapes(mode))
    ops: list[tuple] = []
    for _ in range(draw(st.integers(1, MAX_OPS))):
        what = draw(st.sampled_from(("fact", "rule", "fact", "rule", "rule", "delete", "delete",
                                     "recreate")))
        if what == "fact":
            ops.append(("insert", draw(facts(shape))))
        elif what == "rule":
            ops.append(("insert", draw(rules(shape, mode))))
        elif what == "delete":
            ops.append(("delete", draw(st.integers(0, MAX_OPS - 1))))
        else:
            shape = draw(shapes(mode))
            ops.append(("recreate",))
    return ops


def classify(exc: PolicyError) -> str:
    """The reference's name for the reason of an engine refusal."""
    cause = exc.cause
    if "arity mismatch" in cause:
        return "arity"
    if "is not bound by a positive literal" in cause or "fact is not ground" in cause:
        return "unsafe"
    if "Rules are recursive" in cause:
        return "recursion"
    if "recursion through negation is not stratified" in cause:
        return "negation"
    return f"other: {cause}"


class Run:
    """One engine and one reference, driven in lockstep, with a replayable log."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.engine = Engine()
        self.engine.create_policy("c", kind)
        self.ref = Reference(kind)
        self.stored: list[tuple[object, str, str]] = []  # (rule, engine id, log name)
        self.log = ["e = Engine()", f"e.create_policy('c', {kind!r})"]
        self.refusals: list[str] = []
        self.n = 0

    def fail(self, what: str) -> str:
        calls = "\n    ".join(self.log)
        return f"{what}\n  after the engine calls:\n    {calls}"

    def insert(self, rule) -> None:
        text = to_text(rule)
        expected = self.ref.problems(rule)
        try:
            rule_id, _ = self.engine.insert_rule("c", text)
        except PolicyError as exc:
            self.log.append(f"e.insert_rule('c', {text!r})  # refused: {exc.cause}")
            reason = classify(exc)
            assert expected, self.fail(f"engine refused {text!r}, a valid rule: {exc}")
            assert reason in expected, self.fail(
                f"engine refused {text!r} for {reason!r}; the reference's reasons: {expected}")
            self.refusals.append(reason)
            event(f"refused: {reason}")
            return
        known = [entry for entry in self.stored if entry[0] == rule]
        name = known[0][2] if known else f"r{self.n}"
        self.log.append(f"{name} = e.insert_rule('c', {text!r})[0]")
        assert not expected, self.fail(
            f"engine accepted {text!r}, which the reference refuses: {expected}")
        self.ref.insert_rule(rule)
        if known:
            assert rule_id == known[0][1], self.fail("a repeated rule got a new id")
        else:
            self.n += 1
            self.stored.append((rule, rule_id, name))

    def delete(self, k: int) -> None:
        if not self.stored:
            return
        rule, rule_id, name = self.stored.pop(k % len(self.stored))
        self.log.append(f"e.delete_rule('c', {name})  # {to_text(rule)}")
        self.engine.delete_rule("c", rule_id)
        self.ref.delete_rule(rule)

    def recreate(self) -> None:
        self.log += ["e.delete_policy('c')", f"e.create_policy('c', {self.kind!r})"]
        self.engine.delete_policy("c")
        self.engine.create_policy("c", self.kind)
        self.ref = Reference(self.kind)
        self.stored = []

    def compare(self) -> None:
        expected = self.ref.evaluate()
        for table in TABLES:
            got = self.engine.select("c", table)
            want = expected.get(table, set())
            assert got == want, self.fail(
                f"select('c', {table!r}): engine {sorted(got, key=repr)}, "
                f"reference {sorted(want, key=repr)}")
        assert self.engine.tables("c") == sorted(self.ref.tables()), self.fail(
            f"tables: engine {self.engine.tables('c')}, reference {sorted(self.ref.tables())}")
        texts = [text for _, text in self.engine.rules("c")]
        assert texts == [to_text(r) for r in self.ref.rules], self.fail(
            f"rules: engine {texts}, reference {[to_text(r) for r in self.ref.rules]}")


def run(kind: str, ops: list[tuple]) -> Run:
    state = Run(kind)
    for op in ops:
        if op[0] == "insert":
            state.insert(op[1])
        elif op[0] == "delete":
            state.delete(op[1])
        else:
            state.recreate()
        state.compare()
    event(f"operations: {len(ops)}")
    return state


NONREC = Mode("nonrecursive", free=False)
REC = Mode("recursive", free=False)
FREE_NONREC = Mode("nonrecursive", free=True)
FREE_REC = Mode("recursive", free=True)


@settings(max_examples=300, deadline=None, database=None)
@given(scenarios(NONREC))
def test_nonrecursive_policy_matches_reference(ops):
    run("nonrecursive", ops)


@settings(max_examples=300, deadline=None, database=None)
@given(scenarios(REC))
def test_recursive_policy_matches_reference(ops):
    run("recursive", ops)


@settings(max_examples=150, deadline=None, database=None)
@given(scenarios(NONREC))
def test_recursive_policy_runs_nonrecursive_programs_like_reference(ops):
    run("recursive", ops)


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from((FREE_NONREC, FREE_REC)).flatmap(
    lambda mode: st.tuples(st.just(mode.kind), scenarios(mode))))
def test_refusals_match_reference_on_unconstrained_programs(case):
    # Cycles, negation through recursion and unsafe variables are generated
    # here too: the engine must refuse exactly what the reference refuses.
    kind, ops = case
    run(kind, ops)


# -- the reference itself, on hand-checked examples ------------------------------

X, Y, Z = Var("x"), Var("y"), Var("z")


def _program(kind: str, texts: list[str]) -> Callable[[str], set]:
    r = Reference(kind)
    for text in texts:
        r.insert_rule(text)
    return r.select


def test_reference_on_hand_checked_programs():
    select = _program("recursive", [
        "e(1, 2)", "e(2, 3)", "e(3, 1)", "e(3, 4)", 'e("a", "b")',
        "path(x, y) :- e(x, y)",
        "path(x, z) :- path(x, y), e(y, z)",
        "loop(x) :- path(x, x)",
        "node(x) :- e(x, y)", "node(y) :- e(x, y)",
        "open(x) :- node(x), not loop(x)",
        "small(x) :- node(x), lt(x, 3)",
        "next(x, z) :- node(x), plus(x, 1, z)",
        "same(x) :- node(x), plus(x, 0, x)",
        "twice(z) :- node(x), plus(x, x, z)",
        'isa(x) :- node(x), equal(x, "a")',
    ])
    assert select("loop") == {(1,), (2,), (3,)}
    assert select("open") == {(4,), ("a",), ("b",)}
    assert select("small") == {(1,), (2,)}  # lt of a string and an int does not hold
    assert select("next") == {(1, 2), (2, 3), (3, 4), (4, 5)}
    assert select("same") == {(1,), (2,), (3,), (4,)}
    assert select("twice") == {(2,), (4,), (6,), (8,), ("aa",), ("bb",)}
    assert select("isa") == {("a",)}
    assert (1, 4) in select("path") and (4, 1) not in select("path")


def test_reference_refusals():
    r = Reference("nonrecursive")
    r.insert_rule("p(x) :- q(x)")
    assert r.problems("q(x) :- p(x)") == {"recursion"}
    assert r.problems("q(1, 2)") == {"arity"}
    assert r.problems("s(x) :- q(x), not t(y)") == {"unsafe"}
    assert r.problems("s(z) :- q(x), plus(x, 1, z)") == set()
    assert r.problems("s(z) :- q(x), plus(y, 1, z)") == {"unsafe"}
    rec = Reference("recursive")
    rec.insert_rule("p(x) :- q(x), not r(x)")
    assert rec.problems("r(x) :- p(x)") == {"negation"}
    assert rec.problems("q(x) :- p(x)") == set()
    r.delete_rule("p(x) :- q(x)")
    assert r.problems("q(1, 2)") == set()


@settings(max_examples=200, deadline=None, database=None)
@given(scenarios(FREE_NONREC))
def test_reference_text_round_trip(ops):
    for op in ops:
        if op[0] == "insert":
            assert ref.from_text(to_text(op[1])) == op[1]


@pytest.mark.parametrize("text", [
    'p("a", 1) :- q(x, "b"), not r(x), lt(x, 3), plus(x, 1, y)',
    "p(x) :- q(x, x), equal(x, 0), gteq(2, x)",
    'q("b", 3)',
])
def test_to_text_is_the_engines_canonical_text(text):
    rule = ref.from_text(text)
    assert to_text(rule) == text
    e = Engine()
    e.create_policy("c")
    e.insert_rule("c", text)
    assert [t for _, t in e.rules("c")] == [text]
