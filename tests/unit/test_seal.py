"""congress_ha.bus.seal: a message sealed by a key holder is taken once; a forged,
altered, moved, replayed or stale one is refused with its kind; replies are bound
to their request; keys rotate without a flag day."""

from __future__ import annotations

import pytest

from congress_ha.bus.seal import MAX_SEEN, Sealer, SealError, Seen, canonical, new_key

KEY, OTHER, NEXT = (new_key().encode() for _ in range(3))
ARGS = {"request": {"action_id": "a1", "args": ["disk", 3, 2.5, None, True]}}


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def pair(sender_keys=(KEY,), receiver_keys=(KEY,), max_age=120.0):
    clock = Clock()
    return (Sealer(list(sender_keys), "n2", max_age, clock),
            Sealer(list(receiver_keys), "n1", max_age, clock), clock)


def refused(receiver, seal, args=ARGS, method="execute_action", seen=None):
    with pytest.raises(SealError) as caught:
        receiver.check("dsd", method, seal, args, seen or Seen())
    return caught.value


def test_a_sealed_message_is_taken_once_and_its_copy_is_a_replay():
    sender, receiver, _ = pair()
    seal = sender.seal("dsd", "execute_action", ARGS)
    seen = Seen()
    assert receiver.check("dsd", "execute_action", seal, ARGS, seen)["from"] == "n2"
    err = refused(receiver, seal, seen=seen)
    assert err.kind == "replayed" and "already taken" in str(err)


def test_what_arrives_after_json_still_verifies():
    import json
    sender, receiver, _ = pair()
    args = {"delta": {"added": [("web1", 1.0), ("é", -0.0)], "z": {"b": 1, "a": 2}}}
    seal = sender.seal("tables", "table_delta", args)
    wire = json.loads(json.dumps({"seal": seal, "args": args}))
    receiver.check("tables", "table_delta", wire["seal"], wire["args"], Seen())


@pytest.mark.parametrize("change", ["args", "method", "topic", "sender", "ts", "nonce"])
def test_any_change_to_a_sealed_message_is_a_forgery(change):
    sender, receiver, _ = pair()
    seal = sender.seal("dsd", "execute_action", ARGS)
    args, method, topic = ARGS, "execute_action", "dsd"
    if change == "args":
        args = {"request": {**ARGS["request"], "args": ["disk", 4, 2.5, None, True]}}
    elif change == "method":
        method = "execute_direct"
    elif change == "topic":
        topic = "tables"
    else:
        key = {"sender": "from"}.get(change, change)
        seal = {**seal, key: seal[key] + (1 if change == "ts" else "x")}
    with pytest.raises(SealError) as caught:
        receiver.check(topic, method, seal, args, Seen())
    assert caught.value.kind == "forged" and "bad signature" in str(caught.value)


@pytest.mark.parametrize("seal, words", [
    (None, "unsigned"),
    ({"v": 1, "from": "x", "ts": 0, "nonce": "n"}, "unsigned"),
    ("a string", "unsigned"),
])
def test_an_unsigned_message_is_a_forgery(seal, words):
    _, receiver, _ = pair()
    err = refused(receiver, seal)
    assert err.kind == "forged" and words in str(err)


def test_a_key_the_cluster_does_not_hold_is_a_forgery():
    sender, receiver, _ = pair(sender_keys=(OTHER,))
    err = refused(receiver, sender.seal("dsd", "execute_action", ARGS))
    assert err.kind == "forged" and "unknown key" in str(err)
    assert "differs between nodes" in str(err)


@pytest.mark.parametrize("offset", [-121.0, 121.0])
def test_an_old_or_future_message_is_stale_and_says_why(offset):
    sender, receiver, clock = pair()
    seal = sender.seal("dsd", "execute_action", ARGS)
    clock.now += offset
    err = refused(receiver, seal)
    assert err.kind == "stale" and "max_message_age" in str(err) and "NTP" in str(err)


def test_a_nonce_is_remembered_as_long_as_its_message_is_fresh():
    sender, receiver, clock = pair(max_age=10.0)
    seen = Seen()
    seal = sender.seal("dsd", "execute_action", ARGS)
    receiver.check("dsd", "execute_action", seal, ARGS, seen)
    for _ in range(5):  # other traffic goes by; the old nonce is still known
        clock.now += 2.0
        receiver.check("dsd", "execute_action", sender.seal("dsd", "execute_action", ARGS),
                       ARGS, seen)
        assert refused(receiver, seal, seen=seen).kind in ("replayed", "stale")
    clock.now += 100.0
    receiver.check("dsd", "execute_action", sender.seal("dsd", "execute_action", ARGS),
                   ARGS, seen)
    assert len(seen) == 1  # the expired ones are gone


def test_seen_is_bounded():
    seen = Seen(most=100)
    for i in range(1000):
        assert seen.first(f"n{i}", until=1e12, now=0.0)
    assert len(seen) == 100 and seen.evicted == 900
    assert MAX_SEEN >= 100_000


def test_a_reply_is_bound_to_its_request():
    sender, receiver, _ = pair()
    seal = sender.seal("dsd", "push_rows", ARGS)
    other = sender.seal("dsd", "push_rows", ARGS)
    reply = receiver.seal_reply(seal, {"ok": True, "rows": 1})
    assert sender.open_reply(seal, reply) == {"ok": True, "rows": 1}
    for forged in (receiver.seal_reply(other, {"ok": True, "rows": 1}),  # another call's
                   {**reply, "r": {"ok": True, "rows": 2}},              # altered
                   {"r": {"ok": True, "rows": 1}},                       # unsigned
                   {"ok": True, "rows": 1}):                             # no seal at all
        with pytest.raises(SealError, match="reply"):
            sender.open_reply(seal, forged)


def test_keys_rotate_without_a_flag_day():
    """Old key first everywhere; then new key added as a second line; then the new
    key first; then the old one removed: every step, every pair of nodes agrees."""
    steps = [[KEY], [KEY, NEXT], [NEXT, KEY], [NEXT]]
    for a, b in zip(steps, steps[1:], strict=False):  # nodes one step apart
        for left, right in ((a, b), (b, a)):
            sender, receiver, _ = pair(sender_keys=left, receiver_keys=right)
            seal = sender.seal("heartbeat", "heartbeat", ARGS)
            receiver.check("heartbeat", "heartbeat", seal, ARGS, Seen())


def test_without_a_key_nothing_is_checked_and_replies_still_travel():
    sender, receiver = Sealer(None, "n2"), Sealer(None, "n1")
    seal = sender.seal("dsd", "snapshot", {})
    assert "mac" not in seal and receiver.check("dsd", "snapshot", seal, {}, Seen()) == seal
    assert sender.open_reply(seal, receiver.seal_reply(seal, None)) is None


def test_canonical_is_independent_of_key_order():
    assert canonical({"b": 1, "a": [1, 2.5]}) == canonical({"a": [1, 2.5], "b": 1}) \
        == b'{"a":[1,2.5],"b":1}'
