"""Rules of any length compile and evaluate: the generated code no longer nests a
block per literal (CPython allows 20), and every plan is compiled when a rule is
checked, not first found broken in the middle of an evaluation.

Expected answers come from a plain Python join written here, not from the engine.
"""

import pytest

from congress_ha.engine import Engine


def chain_rule(n: int) -> str:
    """p(x0, xn) :- e(x0, x1), e(x1, x2), ..., e(x{n-1}, xn)"""
    body = ", ".join(f"ds:e(x{i}, x{i + 1})" for i in range(n))
    return f"p(x0, x{n}) :- {body}"


def chain_answer(edges: set[tuple[int, int]], n: int) -> set[tuple[int, int]]:
    paths = {(a, b) for a, b in edges}
    for _ in range(n - 1):
        paths = {(a, c) for a, b in paths for b2, c in edges if b == b2}
    return paths


@pytest.mark.parametrize("n", [19, 20, 21, 25, 40, 120])
def test_a_chain_of_n_joins_gives_the_reference_answer_and_follows_deltas(n):
    e = Engine()
    e.set_schema("ds", {"e": ["a", "b"]})
    e.create_policy("c")
    edges = {(i, i + 1) for i in range(n + 3)} | {(2, 0)}
    e.apply_delta("ds", "e", edges, [])
    e.insert_rule("c", chain_rule(n))
    assert e.select("c", "p") == chain_answer(edges, n)
    # A delta enters at every one of the n literals: the split helpers run too.
    e.apply_delta("ds", "e", [(n + 3, n + 4)], [(1, 2)])
    edges = (edges | {(n + 3, n + 4)}) - {(1, 2)}
    assert e.select("c", "p") == chain_answer(edges, n)


def test_a_long_rule_with_filters_negation_and_builtins_compiles():
    e = Engine()
    e.set_schema("ds", {"e": ["a", "b"], "bad": ["a"]})
    e.create_policy("c")
    e.apply_delta("ds", "e", {(i, i + 1) for i in range(40)}, [])
    e.apply_delta("ds", "bad", {(7,)}, [])
    n = 30
    body = [f"ds:e(x{i}, x{i + 1}), not ds:bad(x{i}), lt(x{i}, 100)" for i in range(n)]
    e.insert_rule("c", f"p(x0) :- {', '.join(body)}")
    expected = {(s,) for s in range(41 - n) if not s <= 7 <= s + n - 1}
    assert e.select("c", "p") == expected


def test_check_rule_compiles_what_insert_will_run():
    e = Engine()
    e.set_schema("ds", {"e": ["a", "b"]})
    e.create_policy("c")
    e.check_rule("c", chain_rule(64))  # no error: compiles
    assert e.rules("c") == []          # and stores nothing
