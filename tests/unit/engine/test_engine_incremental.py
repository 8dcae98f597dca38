"""Incremental maintenance equals a naive full evaluation, over random change sequences."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from congress_ha.engine import Engine

DOMAIN = st.integers(min_value=0, max_value=4)
UNARY = st.tuples(DOMAIN)
BINARY = st.tuples(DOMAIN, DOMAIN)


def _closure(edges: set) -> set:
    path = set(edges)
    while True:
        new = {(x, z) for (x, y) in path for (y2, z) in edges if y == y2} - path
        if not new:
            return path
        path |= new


def naive_flat(db: dict) -> dict:
    q, r, e = db["q"], db["r"], db["e"]
    p = {x for x in q if x in r}
    s = {x for x in q if x not in r}
    t = {(x, y) for (x, y) in e if (y, x) in e}
    u = {(x,) for (x, y) in e if (y,) not in p}
    w = {(x, z) for (x, y) in e for (y2, z) in e if y == y2 and x != z}
    return {"p": p, "s": s, "t": t, "u": u, "w": w}


FLAT_RULES = [
    "p(x) :- q(x), r(x)",
    "s(x) :- q(x), not r(x)",
    "t(x, y) :- e(x, y), e(y, x)",
    "u(x) :- e(x, y), not p(y)",
    "w(x, z) :- e(x, y), e(y, z), not equal(x, z)",
]


def naive_recursive(db: dict) -> dict:
    e, q, r = db["e"], db["q"], db["r"]
    path = _closure(e)
    loop = {(x,) for (x,) in q if (x, x) not in path}
    # a/b mutually recursive: a = e + b filtered by r, b = a . e
    a, b = set(e), set()
    while True:
        nb = {(x, y) for (x, z) in a for (z2, y) in e if z == z2}
        na = set(e) | {(x, y) for (x, y) in nb if (y,) in r}
        if na == a and nb == b:
            break
        a, b = na, nb
    c = {(x,) for (x, y) in a if (y, x) in b}
    return {"path": path, "loop": loop, "a": a, "b": b, "c": c}


RECURSIVE_RULES = [
    "path(x, y) :- e(x, y)",
    "path(x, z) :- path(x, y), e(y, z)",
    "loop(x) :- q(x), not path(x, x)",
    "a(x, y) :- e(x, y)",
    "b(x, y) :- a(x, z), e(z, y)",
    "a(x, y) :- b(x, y), r(y)",
    "c(x) :- a(x, y), b(y, x)",
]

CHANGE = st.one_of(
    st.tuples(st.just("q"), st.lists(UNARY, max_size=3), st.lists(UNARY, max_size=3)),
    st.tuples(st.just("r"), st.lists(UNARY, max_size=3), st.lists(UNARY, max_size=3)),
    st.tuples(st.just("e"), st.lists(BINARY, max_size=4), st.lists(BINARY, max_size=4)),
)


def _run(kind: str, rules: list[str], naive, changes, rule_at: int) -> None:
    eng = Engine()
    eng.create_policy("c", kind=kind)
    db: dict[str, set] = {"q": set(), "r": set(), "e": set()}
    ids = []

    def add_rules() -> None:
        for text in rules:
            ids.append(eng.insert_rule("c", text)[0])

    for n, (table, added, removed) in enumerate(changes):
        if n == rule_at:
            add_rules()
        eng.apply_delta("c", table, added, removed)
        db[table] = (db[table] - set(removed)) | set(added)
        if ids:
            for name, rows in naive(db).items():
                assert eng.select("c", name) == rows, (name, n)
    if not ids:
        add_rules()
    for name, rows in naive(db).items():
        assert eng.select("c", name) == rows, name
    # deleting and re-inserting one rule (the recursive one, if any) keeps results
    eng.delete_rule("c", ids[1])
    eng.insert_rule("c", rules[1])
    for name, rows in naive(db).items():
        assert eng.select("c", name) == rows, ("after re-insert", name)


@settings(max_examples=150, deadline=None)
@given(st.lists(CHANGE, max_size=12), st.integers(min_value=0, max_value=12))
def test_flat_rules_incremental_equals_naive(changes, rule_at):
    _run("nonrecursive", FLAT_RULES, naive_flat, changes, rule_at)


@settings(max_examples=150, deadline=None)
@given(st.lists(CHANGE, max_size=12), st.integers(min_value=0, max_value=12))
def test_recursive_rules_incremental_equals_naive(changes, rule_at):
    _run("recursive", RECURSIVE_RULES, naive_recursive, changes, rule_at)


@settings(max_examples=60, deadline=None)
@given(st.lists(CHANGE, max_size=10))
def test_incremental_equals_fresh_engine_loading_everything(changes):
    eng = Engine()
    eng.create_policy("c", kind="recursive")
    for text in RECURSIVE_RULES + FLAT_RULES[:2]:
        eng.insert_rule("c", text)
    db: dict[str, set] = {"q": set(), "r": set(), "e": set()}
    for table, added, removed in changes:
        eng.apply_delta("c", table, added, removed)
        db[table] = (db[table] - set(removed)) | set(added)
    fresh = Engine()
    fresh.create_policy("c", kind="recursive")
    for table, rows in db.items():
        fresh.apply_delta("c", table, rows, [])
    for text in RECURSIVE_RULES + FLAT_RULES[:2]:
        fresh.insert_rule("c", text)
    for name in eng.tables("c"):
        assert eng.select("c", name) == fresh.select("c", name), name


def test_rule_reading_two_tables_of_one_recursive_component_counts_once():
    eng = Engine()
    eng.create_policy("c", kind="recursive")
    for text in RECURSIVE_RULES:
        eng.insert_rule("c", text)
    eng.apply_delta("c", "e", [(0, 0)], [])
    assert eng.select("c", "c") == {(0,)}
    eng.apply_delta("c", "e", [], [(0, 0)])
    assert eng.select("c", "c") == set()
