"""Rising-edge actions and their replica-independent ids."""

from congress_ha.engine import Engine, action_id


def _engine() -> Engine:
    e = Engine()
    e.create_policy("c")
    e.insert_rule("c", "execute[out:log(x)] :- in:alarm(x)")
    return e


def test_action_fires_once_on_rising_edge():
    e = _engine()
    (action,) = e.apply_delta("in", "alarm", [("disk",)], [])
    assert (action.datasource, action.action, action.args, action.occurrence) == (
        "out", "log", ("disk",), 1)
    assert action.action_id == action_id("out", "log", ("disk",), 1)


def test_action_does_not_fire_again_while_true():
    e = _engine()
    e.apply_delta("in", "alarm", [("disk",)], [])
    assert e.apply_delta("in", "alarm", [("cpu",)], []) != []
    assert e.apply_delta("in", "alarm", [("disk",)], []) == []
    assert e.replace_table("in", "alarm", [("disk",), ("cpu",)]) == []


def test_action_fires_again_after_false_then_true_with_new_id():
    e = _engine()
    (first,) = e.apply_delta("in", "alarm", [("disk",)], [])
    assert e.apply_delta("in", "alarm", [], [("disk",)]) == []
    (second,) = e.apply_delta("in", "alarm", [("disk",)], [])
    assert second.occurrence == 2
    assert second.action_id != first.action_id


def test_two_engines_fed_the_same_data_agree_on_ids():
    ids = []
    for _ in range(2):
        e = _engine()
        got = e.apply_delta("in", "alarm", [("a",), ("b",)], [])
        got += e.apply_delta("in", "alarm", [], [("a",)])
        got += e.apply_delta("in", "alarm", [("a",)], [])
        ids.append([a.action_id for a in got])
    assert ids[0] == ids[1] and len(ids[0]) == 3


def test_action_id_is_32_hex_chars():
    value = action_id("out", "log", ("disk", 1), 1)
    assert len(value) == 32 and int(value, 16) >= 0


def test_inserting_a_rule_over_existing_data_fires():
    e = Engine()
    e.create_policy("c")
    e.apply_delta("in", "alarm", [("disk",)], [])
    _, actions = e.insert_rule("c", "execute[out:log(x)] :- in:alarm(x)")
    assert [a.args for a in actions] == [("disk",)]


def test_action_through_negation_fires_when_row_disappears():
    e = Engine()
    e.create_policy("c")
    e.insert_rule("c", "execute[nova:start(x)] :- want(x), not nova:running(x)")
    e.apply_delta("nova", "running", [("vm",)], [])
    assert e.apply_delta("c", "want", [("vm",)], []) == []
    (action,) = e.apply_delta("nova", "running", [], [("vm",)])
    assert action.action == "start"


def test_two_policies_deriving_the_same_action_fire_it_once():
    e = Engine()
    for name in ("a", "b"):
        e.create_policy(name)
        e.insert_rule(name, "execute[out:log(x)] :- in:alarm(x)")
    assert len(e.apply_delta("in", "alarm", [("disk",)], [])) == 1


def test_simulate_fires_no_actions_and_keeps_occurrences():
    e = _engine()
    e.simulate("c", "in:alarm(x)", "in:alarm+(\"disk\")")
    (action,) = e.apply_delta("in", "alarm", [("disk",)], [])
    assert action.occurrence == 1
