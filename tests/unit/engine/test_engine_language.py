"""One behaviour per test: parsing, constructs and the rejections of the language."""

import json

import pytest

from congress_ha.engine import Engine, PolicyError
from congress_ha.engine.ast import Float
from congress_ha.engine.parser import parse, parse_sequence


@pytest.fixture
def eng() -> Engine:
    e = Engine()
    e.create_policy("c")
    return e


def test_parse_accepts_comments_terminators_and_quotes():
    rules = parse('p(1, "a") ; // one\nq(\'b\'). # two\n/* three */ r(x) :- p(x, "a")')
    assert [str(r) for r in rules] == ['p(1, "a")', 'q("b")', 'r(x) :- p(x, "a")']


def test_parse_negation_spellings():
    for text in ("p(x) :- q(x), not r(x)", "p(x) :- q(x), NOT r(x)", "p(x) :- q(x), !r(x)"):
        assert str(parse(text)[0]) == "p(x) :- q(x), not r(x)"


def test_parse_numbers_and_escapes():
    (rule,) = parse('p(0x10, 1.5, -2, "a\\"b")')
    assert [t.value for t in rule.head.args] == [16, 1.5, -2, 'a"b']


def test_syntax_error_names_rule_and_position(eng):
    with pytest.raises(PolicyError) as err:
        eng.insert_rule("c", "p(x) :- q(x,")
    assert "rule 'p(x) :- q(x,' (line 1, col 13): syntax error" in str(err.value)


def test_syntax_error_on_second_line_reports_line(eng):
    with pytest.raises(PolicyError, match=r"line 2, col 9\): syntax error"):
        eng.insert_rule("c", "p(x) :-\n  q(x), ")


def test_two_statements_where_one_rule_is_expected(eng):
    with pytest.raises(PolicyError, match=r"line 2, col 8\): expected exactly one rule"):
        eng.insert_rule("c", "p(x) :-\n  q(x) r")


def test_facts_in_a_policy(eng):
    eng.insert_rule("c", 'p(1, "a")')
    assert eng.select("c", "p") == {(1, "a")}


def test_fact_must_be_ground(eng):
    with pytest.raises(PolicyError, match="fact is not ground: variable 'x'"):
        eng.insert_rule("c", "p(x)")


def test_join(eng):
    eng.insert_rule("c", "p(x, z) :- q(x, y), r(y, z)")
    eng.apply_delta("c", "q", [(1, 2), (3, 4)], [])
    eng.apply_delta("c", "r", [(2, 5)], [])
    assert eng.select("c", "p") == {(1, 5)}


def test_self_join_counts_each_derivation_once(eng):
    eng.insert_rule("c", "err(p, a, b) :- port(p, a), port(p, b), not equal(a, b)")
    eng.apply_delta("c", "port", [(1, "x"), (1, "y")], [])
    assert eng.select("c", "err") == {(1, "x", "y"), (1, "y", "x")}
    eng.apply_delta("c", "port", [], [(1, "x"), (1, "y")])
    assert eng.select("c", "err") == set()


def test_negation(eng):
    eng.insert_rule("c", "s(x) :- q(x), not r(x)")
    eng.apply_delta("c", "q", [(1,), (2,)], [])
    eng.apply_delta("c", "r", [(1,)], [])
    assert eng.select("c", "s") == {(2,)}


def test_qualified_datasource_table(eng):
    eng.insert_rule("c", "p(x) :- nova:servers(x, y)")
    eng.apply_delta("nova", "servers", [("vm1", "a")], [])
    assert eng.select("c", "p") == {("vm1",)}


def test_reference_to_another_policy(eng):
    eng.create_policy("other")
    eng.insert_rule("other", "base(1)")
    eng.insert_rule("c", "p(x) :- other:base(x)")
    assert eng.select("c", "p") == {(1,)}


def test_column_references_by_name(eng):
    eng.set_schema("nova", {"servers": ["id", "name", "status"]})
    eng.insert_rule("c", 'active(x) :- nova:servers(id=x, status="ACTIVE")')
    eng.apply_delta("nova", "servers", [("a", "n1", "ACTIVE"), ("b", "n2", "DOWN")], [])
    assert eng.select("c", "active") == {("a",)}


def test_column_references_mixed_positional_and_number(eng):
    eng.set_schema("nova", {"servers": ["id", "name", "status"]})
    eng.insert_rule("c", "p(x, s) :- nova:servers(x, 2=s)")
    eng.apply_delta("nova", "servers", [("a", "n1", "ACTIVE")], [])
    assert eng.select("c", "p") == {("a", "ACTIVE")}


def test_negated_column_reference_means_no_matching_row(eng):
    eng.set_schema("nova", {"servers": ["id", "name", "status"]})
    eng.insert_rule("c", "orphan(x) :- vm(x), not nova:servers(id=x)")
    eng.apply_delta("c", "vm", [("a",), ("b",)], [])
    eng.apply_delta("nova", "servers", [("a", "n1", "UP"), ("a", "n2", "UP")], [])
    assert eng.select("c", "orphan") == {("b",)}
    eng.apply_delta("nova", "servers", [], [("a", "n1", "UP")])
    assert eng.select("c", "orphan") == {("b",)}
    eng.apply_delta("nova", "servers", [], [("a", "n2", "UP")])
    assert eng.select("c", "orphan") == {("a",), ("b",)}


def test_unknown_column_names_column_and_table(eng):
    eng.set_schema("nova", {"servers": ["id", "name"]})
    with pytest.raises(PolicyError, match="unknown column 'colour' in table 'nova:servers'"):
        eng.insert_rule("c", "p(x) :- nova:servers(id=x, colour=y)")


def test_column_reference_without_schema_is_rejected(eng):
    with pytest.raises(PolicyError, match="columns of table 'q' are not known"):
        eng.insert_rule("c", "p(x) :- q(id=x)")


def test_arity_mismatch_is_rejected(eng):
    eng.insert_rule("c", "p(x) :- q(x, y)")
    with pytest.raises(PolicyError, match="arity mismatch: table 'q' has 2 columns"):
        eng.insert_rule("c", "r(x) :- q(x)")


def test_arity_mismatch_against_schema(eng):
    eng.set_schema("nova", {"servers": ["id", "name"]})
    with pytest.raises(PolicyError, match="has 2 columns"):
        eng.insert_rule("c", "p(x) :- nova:servers(x)")


def test_unsafe_head_variable(eng):
    with pytest.raises(PolicyError) as err:
        eng.insert_rule("c", "p(x) :- q(y)")
    assert str(err.value) == ("rule 'p(x) :- q(y)' (line 1, col 1): variable 'x' in the head "
                              "is not bound by a positive literal")


def test_unsafe_negated_variable(eng):
    with pytest.raises(PolicyError, match="variable 'y' in negated literal 'not r"):
        eng.insert_rule("c", "p(x) :- q(x), not r(x, y)")


def test_unsafe_builtin_input(eng):
    with pytest.raises(PolicyError, match="variable 'y' in an input of builtin"):
        eng.insert_rule("c", "p(x) :- q(x), lt(x, y)")


def test_builtin_output_binds_variable(eng):
    eng.insert_rule("c", "p(x, z) :- q(x), plus(x, 1, z)")
    eng.apply_delta("c", "q", [(1,), (2,)], [])
    assert eng.select("c", "p") == {(1, 2), (2, 3)}


def test_builtin_prefix_and_comparison(eng):
    eng.insert_rule("c", "big(x) :- q(x), builtin:gt(x, 10)")
    eng.apply_delta("c", "q", [(5,), (50,)], [])
    assert eng.select("c", "big") == {(50,)}


def test_builtin_on_bad_arguments_does_not_hold(eng):
    eng.insert_rule("c", "d(x, z) :- q(x, y), div(x, y, z)")
    eng.insert_rule("c", "l(x) :- q(x, y), lt(x, y)")
    eng.apply_delta("c", "q", [(6, 0), (6, 4), ("a", 1)], [])
    assert eng.select("c", "d") == {(6, 1)}
    assert eng.select("c", "l") == set()


def test_string_and_datetime_and_network_builtins(eng):
    eng.insert_rule("c", "full(n) :- name(a, b), concat(a, b, n)")
    eng.insert_rule("c", "year(y) :- stamp(s), unpack_date(s, y, m, d)")
    eng.insert_rule("c", "inside(ip) :- addr(ip, net), ip_in_network(ip, net)")
    eng.apply_delta("c", "name", [("ab", "cd")], [])
    eng.apply_delta("c", "stamp", [("2024-02-03 10:00:00",)], [])
    eng.apply_delta("c", "addr", [("10.0.0.1", "10.0.0.0/8"), ("11.0.0.1", "10.0.0.0/8")], [])
    assert eng.select("c", "full") == {("abcd",)}
    assert eng.select("c", "year") == {(2024,)}
    assert eng.select("c", "inside") == {("10.0.0.1",)}


def test_negated_builtin(eng):
    eng.insert_rule("c", "diff(a, b) :- pair(a, b), not equal(a, b)")
    eng.apply_delta("c", "pair", [(1, 1), (1, 2)], [])
    assert eng.select("c", "diff") == {(1, 2)}


def test_now_reads_the_clock_table_the_dsd_publishes(eng):
    """now(x) is the row of builtin:now: no clock row yet, no x; then exactly it."""
    eng.insert_rule("c", "stamped(x, t) :- q(x), now(t)")
    eng.insert_rule("c", "late(t) :- builtin:now(t), datetime_gt(t, \"Jan 1, 2026\")")
    eng.apply_delta("c", "q", [(1,)], [])
    assert eng.select("c", "stamped") == set()
    eng.replace_table("builtin", "now", [("2026-12-02 05:00:00",)])
    assert eng.select("c", "stamped") == {(1, "2026-12-02 05:00:00")}
    assert eng.select("c", "late") == {("2026-12-02 05:00:00",)}
    eng.replace_table("builtin", "now", [("2025-12-02 05:00:01",)])
    assert eng.select("c", "stamped") == {(1, "2025-12-02 05:00:01")}
    assert eng.select("c", "late") == set()


@pytest.mark.parametrize("rule, why", [
    ("now(1)", "'now' is a builtin and cannot be defined"),
    ("p(x) :- now(x, y)", "arity mismatch: table 'builtin:now' has 1 columns"),
    ("p(x) :- not now(x)", "not bound by a positive literal"),
])
def test_now_is_checked_like_a_table_of_one_column(eng, rule, why):
    with pytest.raises(PolicyError, match=why):
        eng.insert_rule("c", rule)


def test_head_must_not_name_a_policy(eng):
    with pytest.raises(PolicyError, match="should not reference any policy"):
        eng.insert_rule("c", "nova:p(x) :- q(x)")


def test_modal_in_body_is_rejected(eng):
    with pytest.raises(PolicyError, match="modals are not allowed in the body"):
        eng.insert_rule("c", "p(x) :- execute[nova:pause(x)]")


def test_only_execute_modal(eng):
    with pytest.raises(PolicyError, match="only the 'execute' modal"):
        eng.insert_rule("c", "insert[p(x)] :- q(x)")


def test_recursion_rejected_in_nonrecursive_policy(eng):
    eng.insert_rule("c", "p(x) :- q(x)")
    with pytest.raises(PolicyError, match="Rules are recursive: q -> p -> q"):
        eng.insert_rule("c", "q(x) :- p(x)")


def test_recursion_across_policies_rejected(eng):
    eng.create_policy("d")
    eng.insert_rule("c", "p(x) :- d:q(x)")
    with pytest.raises(PolicyError, match="Rules are recursive"):
        eng.insert_rule("d", "q(x) :- c:p(x)")


def test_recursive_kind_computes_transitive_closure():
    e = Engine()
    e.create_policy("g", kind="recursive")
    e.insert_rule("g", "path(x, y) :- edge(x, y)")
    e.insert_rule("g", "path(x, z) :- path(x, y), edge(y, z)")
    e.apply_delta("g", "edge", [(1, 2), (2, 3), (3, 1)], [])
    assert len(e.select("g", "path")) == 9
    e.apply_delta("g", "edge", [], [(3, 1)])
    assert e.select("g", "path") == {(1, 2), (2, 3), (1, 3)}


def test_recursion_through_negation_is_rejected_naming_cycle():
    e = Engine()
    e.create_policy("g", kind="recursive")
    e.insert_rule("g", "a(x) :- n(x), not b(x)")
    with pytest.raises(PolicyError, match="not stratified: a -> not b -> a"):
        e.insert_rule("g", "b(x) :- n(x), a(x)")


def test_check_rule_does_not_add(eng):
    assert str(eng.check_rule("c", "p(x) :- q(x)")[0]) == "p(x) :- q(x)"
    assert eng.rules("c") == []


def test_rules_lists_canonical_text_and_delete_rule(eng):
    rule_id, _ = eng.insert_rule("c", "p(x):-q(x)", rule_id="r1")
    assert rule_id == "r1"
    assert eng.rules("c") == [("r1", "p(x) :- q(x)")]
    eng.apply_delta("c", "q", [(1,)], [])
    eng.delete_rule("c", "r1")
    assert eng.select("c", "p") == set()


def test_duplicate_rule_returns_existing_id(eng):
    first, _ = eng.insert_rule("c", "p(x) :- q(x)")
    second, _ = eng.insert_rule("c", "p(x)  :-  q(x)")
    assert first == second and len(eng.rules("c")) == 1


def test_every_error_is_a_value_error(eng):
    with pytest.raises(ValueError):
        eng.insert_rule("c", "p(")


def test_query_matches_constants_and_repeated_variables(eng):
    eng.apply_delta("c", "p", [(1, 1), (1, 2), (2, 2)], [])
    assert eng.query("c", "p(x, 2)") == {(1, 2), (2, 2)}
    assert eng.query("c", "p(x, x)") == {(1, 1), (2, 2)}


def test_tables_and_policies(eng):
    eng.insert_rule("c", "p(x) :- q(x)")
    # Congress's Theory.tablenames() (datalog/base.py) takes every rule's
    # tablenames(): heads and body tables alike, so q, only read, is listed.
    assert eng.tables("c") == ["p", "q"]
    assert eng.select("c", "q") == set()
    assert eng.policies() == ["c"]
    eng.delete_policy("c")
    assert eng.policies() == []


def test_trace_explains_each_row(eng):
    eng.insert_rule("c", "p(x) :- q(x), not r(x)")
    eng.apply_delta("c", "q", [(1,)], [])
    rows, lines = eng.trace("c", "p")
    assert rows == {(1,)}
    assert lines == ["p(1) by rule 'p(x) :- q(x), not r(x)'", "  q(1) is given",
                     "  r(1) is absent"]


def test_simulate_answers_hypothetically_and_restores_state(eng):
    eng.insert_rule("c", "p(x) :- nova:q(x), not r(x)")
    eng.apply_delta("nova", "q", [(1,)], [])
    assert eng.simulate("c", "p(x)", "nova:q+(2) r+(1)") == {(2,)}
    assert eng.select("c", "p") == {(1,)}
    assert eng.simulate("c", "p(x)", "nova:q-(1)") == set()
    assert eng.select("c", "p") == {(1,)}


def test_simulate_rejects_actions(eng):
    with pytest.raises(PolicyError, match="is an action"):
        eng.simulate("c", "p(x)", "pause(1)")


def test_parse_sequence_signs():
    atoms = parse_sequence('p+(1) nova:q-("a")')
    assert [(a.qualified, a.sign) for a in atoms] == [("p", "+"), ("nova:q", "-")]


def test_rows_must_be_scalars_and_consistent_width(eng):
    with pytest.raises(PolicyError, match="values must be int, float or str"):
        eng.apply_delta("ds", "t", [(None,)], [])
    with pytest.raises(PolicyError, match="must all have"):
        eng.apply_delta("ds", "t", [(1,), (1, 2)], [])


def test_replace_table_computes_delta(eng):
    eng.insert_rule("c", "p(x) :- ds:t(x)")
    eng.replace_table("ds", "t", [(1,), (2,)])
    eng.replace_table("ds", "t", [(2,), (3,)])
    assert eng.select("c", "p") == {(2,), (3,)}


def test_simulate_works_when_the_policy_has_its_own_table_q():
    from congress_ha.engine import Engine

    e = Engine()
    e.create_policy("p")
    e.insert_rule("p", "p(x) :- q(x)")
    e.insert_rule("p", "q(1)")
    assert e.simulate("p", "p(x)", "q+(3)") == {(1,), (3,)}
    assert e.select("p", "p") == {(1,)}


def test_simulate_can_take_out_a_fact_written_as_a_rule_and_puts_it_back():
    from congress_ha.engine import Engine

    e = Engine()
    e.create_policy("p")
    e.insert_rule("p", "p(x) :- q(x)")
    e.insert_rule("p", "q(1)")
    e.insert_rule("p", "q(2)")
    assert e.simulate("p", "p(x)", "q-(1)") == {(2,)}
    assert e.select("p", "p") == {(1,), (2,)}
    assert len(e.rules("p")) == 3


@pytest.mark.parametrize("text", ["equal(x) :- q(x)", "equal(1)", "plus(x) :- q(x)",
                                  "lt(x, y, z) :- q(x, y, z)"])
def test_a_head_named_like_a_builtin_is_refused_at_any_arity(eng, text):
    # Congress's keywords_safety() (datalog/compile.py) checks heads and facts with
    # is_builtin(check_arguments=False): "Conflict with built-in tablename".
    with pytest.raises(PolicyError, match="conflict with built-in tablename"):
        eng.insert_rule("c", text)


def test_int_and_float_are_different_values_as_in_congress(eng):
    """Congress's constants carry a type: 2 (INTEGER) and 2.0 (FLOAT) never unify,
    in facts, joins, negation, queries, datasource rows and builtin outputs;
    a builtin computes on the Python values (equal(2, 2.0) holds)."""
    for rule in ("p(2)", "p(2.0)", "q(2)", "both(x) :- p(x), q(x)",
                 "only(x) :- p(x), not q(x)", "eq(x) :- p(x), equal(x, 2)",
                 "f(z) :- q(x), plus(x, 1.0, z)", "three(x) :- q(x), plus(x, 1, 3.0)",
                 "int3(x) :- q(x), plus(x, 1, 3)", "fl(y) :- q(x), float(x, y)"):
        eng.insert_rule("c", rule)
    rows = {t: {tuple((type(v).__name__, v) for v in r) for r in eng.select("c", t)}
            for t in ("p", "both", "only", "eq", "f", "three", "int3", "fl")}
    assert rows["p"] == {(("int", 2),), (("Float", 2.0),)}
    assert rows["both"] == {(("int", 2),)}
    assert rows["only"] == {(("Float", 2.0),)}
    assert rows["eq"] == {(("int", 2),), (("Float", 2.0),)}
    assert rows["f"] == {(("Float", 3.0),)}
    assert rows["three"] == set() and rows["int3"] == {(("int", 2),)}
    assert rows["fl"] == {(("Float", 2.0),)}
    assert eng.query("c", "p(2.0)") == {(2.0,)} and len(eng.query("c", "p(2)")) == 1
    eng.replace_table("ds", "t", [(2.0,), (3,)])
    eng.insert_rule("c", "dsboth(x) :- ds:t(x), p(x)")
    assert [type(v) for (v,) in eng.select("c", "dsboth")] == [Float]
    assert sorted(json.dumps(list(r)) for r in eng.select("c", "p")) == ["[2.0]", "[2]"]
