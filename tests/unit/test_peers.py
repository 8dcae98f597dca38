"""congress_ha.bus.peers: the peer table on the monotonic clock."""

from congress_ha.bus.messages import Heartbeat
from congress_ha.bus.peers import PeerTable, newer_of_two


def hb(member="a:api-pe", inc="1", started=0.0):
    return Heartbeat(member=member, node_id=member.split(":")[0], incarnation=inc,
                     roles=["api-pe"], ready=True, started=started, beat=1)


def test_a_peer_joins_and_is_lost_after_the_timeout():
    t = PeerTable(peer_timeout=1.0)
    assert [e.kind for e in t.observe(hb(), 0.0)] == ["joined"]
    assert t.expire(1.0) == []
    assert [e.kind for e in t.expire(1.01)] == ["lost"]
    assert t.live() == []


def test_a_new_incarnation_is_reported_as_a_restart():
    t = PeerTable(peer_timeout=1.0)
    t.observe(hb(inc="1"), 0.0)
    assert [e.kind for e in t.observe(hb(inc="2"), 0.1)] == ["restarted"]


def test_goodbye_drops_the_peer_at_once_but_only_its_own_incarnation():
    t = PeerTable(peer_timeout=1.0)
    t.observe(hb(inc="2"), 0.0)
    assert t.goodbye("a:api-pe", "1") == []
    assert [e.kind for e in t.goodbye("a:api-pe", "2")] == ["left"]


def test_of_two_processes_with_one_id_the_later_started_is_newer():
    assert newer_of_two(hb(started=2.0), hb(started=1.0))
    assert not newer_of_two(hb(started=1.0), hb(started=2.0))
    assert newer_of_two(hb(inc="b", started=1.0), hb(inc="a", started=1.0))
