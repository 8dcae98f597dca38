"""Every transition of congress_ha.leader, with a fake clock, plus properties."""

from hypothesis import given, settings
from hypothesis import strategies as st

from congress_ha.leader import LeaderState, Request

PT = 1.0  # peer_timeout


def req(n, pe="a", inc="1"):
    return Request(f"act{n}", pe, inc, "out", "log", (n,))


def ids(decision):
    return [e.request.action_id for e in decision.execute]


def make(**kw):
    kw.setdefault("peer_timeout", PT)
    return LeaderState(**kw)


def test_first_ready_pe_heard_becomes_leader():
    s = make()
    d = s.heard("a", "1", True, 0.0)
    assert s.leader == ("a", "1")
    assert d.changes[0].reason == "first ready PE heard"
    s.heard("b", "1", True, 0.1)
    assert s.leader == ("a", "1")


def test_a_pe_that_is_not_ready_does_not_become_leader():
    s = make()
    s.heard("a", "1", False, 0.0)
    assert s.leader is None
    s.heard("b", "1", True, 0.1)
    assert s.leader == ("b", "1")


def test_a_request_counts_as_hearing_a_ready_pe():
    s = make()
    d = s.request(req(1, "b"), 0.0)
    assert s.leader == ("b", "1")
    assert ids(d) == ["act1"]


def test_leader_requests_are_executed_once_each():
    s = make()
    s.heard("a", "1", True, 0.0)
    assert ids(s.request(req(1), 0.1)) == ["act1"]
    assert ids(s.request(req(1), 0.2)) == []
    assert s.counters.duplicates == 1


def test_non_leader_requests_go_to_the_shadow_log_not_executed():
    s = make()
    s.heard("a", "1", True, 0.0)
    assert ids(s.request(req(1, "b"), 0.1)) == []
    assert s.shadow_len == 1
    # the leader's copy matches it: executed once, shadow cleared
    assert ids(s.request(req(1, "a"), 0.2)) == ["act1"]
    assert s.shadow_len == 0
    assert ids(s.request(req(1, "c"), 0.3)) == []
    assert s.shadow_len == 0


def test_leader_kept_while_heard_within_peer_timeout():
    s = make()
    for i in range(20):
        s.heard("a", "1", True, i * 0.25)
        s.heard("b", "1", True, i * 0.25 + 0.1)
    assert s.leader == ("a", "1")
    assert s.counters.leader_changes == 1


def test_silent_leader_is_lost_after_peer_timeout_and_live_pe_takes_over():
    s = make()
    s.heard("a", "1", True, 0.0)
    s.heard("b", "1", True, 0.5)
    s.heard("b", "1", True, 0.9)
    d = s.tick(1.0)  # silent for exactly peer_timeout: not yet lost
    assert s.leader == ("a", "1") and not d.changes
    d = s.tick(1.05)
    assert s.leader == ("b", "1")
    assert "silent" in d.changes[0].reason


def test_a_successor_is_never_a_pe_that_went_silent_too():
    s = make()
    s.heard("a", "1", True, 0.0)
    s.heard("b", "1", True, 0.5)
    d = s.tick(2.0)  # both silent by now
    assert s.leader is None
    assert [c.new for c in d.changes] == [None]


def test_loss_with_no_live_pe_waits_for_the_next_one_heard():
    s = make()
    s.heard("a", "1", True, 0.0)
    d = s.tick(2.0)
    assert s.leader is None
    assert "no live PE" in d.changes[0].reason
    d = s.heard("c", "1", True, 2.5)
    assert s.leader == ("c", "1")
    assert d.changes[0].reason == "next ready PE heard"


def test_goodbye_of_the_leader_switches_at_once():
    s = make()
    s.heard("a", "1", True, 0.0)
    s.heard("b", "1", True, 0.01)
    d = s.goodbye("a", "1", 0.02)
    assert s.leader == ("b", "1")
    assert "goodbye" in d.changes[0].reason


def test_goodbye_of_an_old_incarnation_is_ignored():
    s = make()
    s.heard("a", "2", True, 0.0)
    s.goodbye("a", "1", 0.1)
    assert s.leader == ("a", "2")


def test_new_incarnation_of_the_leader_loses_the_old_one():
    s = make()
    s.heard("a", "1", True, 0.0)
    s.heard("b", "1", True, 0.1)
    d = s.heard("a", "2", True, 0.2)
    # b was heard more recently than a's new incarnation registered before the
    # loss was handled, so the most recently heard live PE takes over
    assert s.leader in (("b", "1"), ("a", "2"))
    assert s.leader != ("a", "1")
    assert "new incarnation" in d.changes[0].reason


def test_new_leader_replays_its_unexecuted_shadow_entries_in_order():
    s = make()
    s.heard("a", "1", True, 0.0)
    s.request(req(1, "a"), 0.1)
    s.request(req(1, "b"), 0.11)
    s.request(req(2, "b"), 0.2)
    s.request(req(3, "b"), 0.3)
    s.request(req(4, "c"), 0.25)
    d = s.goodbye("a", "1", 0.4)
    assert s.leader == ("b", "1")
    assert ids(d) == ["act2", "act3"]
    assert all(e.reason == "replay" and e.request.pe == "b" for e in d.execute)
    assert s.shadow_len == 1  # act4: only c sent it


def test_unmatched_shadow_entry_runs_after_grace_when_the_safety_net_is_on():
    s = make(shadow_grace=2.0)
    s.heard("a", "1", True, 0.0)
    s.request(req(9, "b"), 0.1)
    for t in (0.5, 1.0, 1.5, 2.0):
        s.heard("a", "1", True, t)
    assert ids(s.tick(2.05)) == []
    d = s.tick(2.2)
    assert ids(d) == ["act9"] and d.execute[0].reason == "grace"
    assert d.warnings


def test_without_the_safety_net_unmatched_entries_age_out():
    s = make(shadow_grace=0, shadow_age=3.0)
    s.heard("a", "1", True, 0.0)
    s.request(req(9, "b"), 0.1)
    for t in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        s.heard("a", "1", True, t)
    d = s.tick(3.2)
    assert ids(d) == [] and s.shadow_len == 0
    assert s.counters.shadow_dropped == 1


def test_shadow_log_is_bounded_in_size():
    s = make(shadow_size=3)
    s.heard("a", "1", True, 0.0)
    for n in range(5):
        s.request(req(n, "b"), 0.1)
    assert s.shadow_len == 3
    assert s.counters.shadow_dropped == 2


def test_journal_ids_are_never_executed_again():
    s = make()
    s.mark_executed(["act1"])
    d = s.request(req(1, "a"), 0.0)
    assert s.leader == ("a", "1")
    assert ids(d) == []


def test_every_change_is_recorded_with_its_reason():
    s = make()
    s.heard("a", "1", True, 0.0)
    s.heard("b", "1", True, 0.1)
    s.goodbye("a", "1", 0.2)
    assert [(c.old, c.new) for c in s.history] == [(None, ("a", "1")),
                                                   (("a", "1"), ("b", "1"))]
    assert s.counters.leader_changes == 2


def test_bad_parameters_are_refused():
    import pytest
    with pytest.raises(ValueError):
        LeaderState(peer_timeout=0)


# -- properties ----------------------------------------------------------------
#
# A small world: PEs derive the same sequence of actions 0..N-1, each at its own
# pace.  Events: a PE derives its next action (and sends it), heartbeats, a PE
# crashes (silent), stops (goodbye) or restarts (new incarnation; it resumes
# from where the world is, possibly skipping old actions, as a PE restored from
# a snapshot does).  At the end time runs on past every timeout.

PES = ("a", "b", "c")
N = 12

events = st.lists(
    st.tuples(st.sampled_from(["derive", "derive", "derive", "beat", "crash", "stop",
                               "restart", "wait"]),
              st.sampled_from(PES),
              st.floats(min_value=0.0, max_value=0.6)),
    max_size=80)


def run_world(evts, grace):
    s = LeaderState(peer_timeout=PT, shadow_grace=grace, shadow_age=30.0)
    now = 0.0
    inc = {pe: 1 for pe in PES}
    alive = {pe: True for pe in PES}
    progress = {pe: 0 for pe in PES}
    sent = {pe: set() for pe in PES}  # what each current incarnation derived
    executed = []

    def apply(d):
        executed.extend(e.request.action_id for e in d.execute)

    for kind, pe, dt in evts:
        now += dt
        if kind == "derive" and alive[pe] and progress[pe] < N:
            n = progress[pe]
            progress[pe] += 1
            sent[pe].add(f"act{n}")
            apply(s.request(req(n, pe, str(inc[pe])), now))
        elif kind == "beat" and alive[pe]:
            apply(s.heard(pe, str(inc[pe]), True, now))
        elif kind == "crash" and alive[pe]:
            alive[pe] = False
        elif kind == "stop" and alive[pe]:
            alive[pe] = False
            apply(s.goodbye(pe, str(inc[pe]), now))
        elif kind == "restart":
            alive[pe] = True
            inc[pe] += 1
            sent[pe] = set()
            progress[pe] = max(progress.values())
        else:
            apply(s.tick(now))
        # live PEs keep beating, as their heartbeat threads do
        for other in PES:
            if alive[other] and other != pe:
                apply(s.heard(other, str(inc[other]), True, now))
    # the survivors finish deriving; then time runs past every timeout
    for pe in PES:
        while alive[pe] and progress[pe] < N:
            n = progress[pe]
            progress[pe] += 1
            sent[pe].add(f"act{n}")
            now += 0.01
            apply(s.request(req(n, pe, str(inc[pe])), now))
    for _ in range(10):
        now += 1.0
        for pe in PES:
            if alive[pe]:
                apply(s.heard(pe, str(inc[pe]), True, now))
        apply(s.tick(now))
    survivors = set().union(*(sent[pe] for pe in PES if alive[pe])) if any(
        alive.values()) else set()
    return executed, survivors


@settings(max_examples=400, deadline=None)
@given(events)
def test_property_no_action_executed_twice(evts):
    executed, _ = run_world(evts, grace=2.0)
    assert len(executed) == len(set(executed))


@settings(max_examples=400, deadline=None)
@given(events)
def test_property_no_action_of_a_surviving_pe_is_lost(evts):
    executed, survivors = run_world(evts, grace=2.0)
    assert survivors <= set(executed)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["derive", "beat", "crash", "stop", "wait"]),
                          st.sampled_from(PES), st.floats(min_value=0.0, max_value=0.6)),
                max_size=60))
def test_property_without_restarts_no_loss_even_without_the_safety_net(evts):
    # Without restarts every PE derives in order, so the replay at each leader
    # change alone covers what the old leader did not send.
    executed, survivors = run_world(evts, grace=0)
    assert len(executed) == len(set(executed))
    assert survivors <= set(executed)


def test_next_deadline_is_the_leaders_expiry_or_the_oldest_grace():
    s = make(shadow_grace=2.0)
    assert s.next_deadline() is None
    s.heard("a", "1", True, 10.0)
    assert abs(s.next_deadline() - (10.0 + PT)) < 0.01
    s.request(req(1, "b"), 10.5)
    s.heard("a", "1", True, 10.9)
    s.heard("a", "1", True, 11.8)
    s.heard("a", "1", True, 12.0)
    assert abs(s.next_deadline() - 12.5) < 0.01  # the shadow entry's grace comes first
    d = s.tick(s.next_deadline())
    assert [e.reason for e in d.execute] == ["grace"]


def test_every_leader_change_is_counted_by_its_cause_and_the_count_outlives_history():
    s = make(history_size=2)
    s.heard("a", "1", True, 0.0)                      # first_ready_pe
    s.heard("b", "1", True, 0.1)
    s.goodbye("a", "1", 0.2)                          # goodbye: b
    s.heard("b", "2", True, 0.3)                      # new_incarnation: b/2
    s.tick(5.0)                                       # silent: no live PE
    s.heard("c", "1", True, 5.1)                      # next_ready_pe
    # (a new incarnation with no other live PE: lost to none, then taken as next)
    assert s.changes_by_cause == {"first_ready_pe": 1, "next_ready_pe": 2, "goodbye": 1,
                                  "silent": 1, "new_incarnation": 1}
    assert len(s.history) == 2 and [c.cause for c in s.history] == ["silent",
                                                                     "next_ready_pe"]
    # the counter of changes to a leader stays what it was: 4 (not the one to none)
    assert s.counters.leader_changes == 4
