"""The table of peers a bus node has heard, on the monotonic clock (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from congress_ha.bus.messages import Heartbeat


@dataclass
class Peer:
    heartbeat: Heartbeat
    last_heard: float   # monotonic seconds
    first_heard: float


@dataclass
class PeerEvent:
    kind: str           # joined | restarted | lost | left
    member: str
    incarnation: str
    detail: str = ""


class PeerTable:
    """Who is on the bus. A peer is lost after ``peer_timeout`` of silence."""

    def __init__(self, peer_timeout: float):
        self.peer_timeout = peer_timeout
        self.peers: dict[str, Peer] = {}

    def observe(self, hb: Heartbeat, now: float) -> list[PeerEvent]:
        events = []
        peer = self.peers.get(hb.member)
        if peer is not None and peer.heartbeat.incarnation != hb.incarnation:
            events.append(PeerEvent("restarted", hb.member, hb.incarnation,
                                    f"was incarnation {peer.heartbeat.incarnation}"))
            peer = None
        if peer is None:
            if not events:
                events.append(PeerEvent("joined", hb.member, hb.incarnation))
            self.peers[hb.member] = Peer(hb, now, now)
        else:
            peer.heartbeat = hb
            peer.last_heard = now
        return events

    def touch(self, member: str, incarnation: str, now: float) -> None:
        """Any message from a peer is contact, not only a heartbeat."""
        peer = self.peers.get(member)
        if peer is not None and peer.heartbeat.incarnation == incarnation:
            peer.last_heard = now

    def goodbye(self, member: str, incarnation: str) -> list[PeerEvent]:
        peer = self.peers.get(member)
        if peer is None or peer.heartbeat.incarnation != incarnation:
            return []
        del self.peers[member]
        return [PeerEvent("left", member, incarnation, "goodbye")]

    def expire(self, now: float) -> list[PeerEvent]:
        events = []
        for member, peer in list(self.peers.items()):
            silent = now - peer.last_heard
            if silent > self.peer_timeout:
                del self.peers[member]
                events.append(PeerEvent("lost", member, peer.heartbeat.incarnation,
                                        f"silent for {silent:.2f}s"))
        return events

    def live(self) -> list[Peer]:
        return list(self.peers.values())

    def dsds(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.heartbeat.is_dsd]


def newer_of_two(mine: Heartbeat, other: Heartbeat) -> bool:
    """True when ``mine`` is the newer of two live processes with one member id.

    The newer one refuses to run.  Start times come from two hosts' wall
    clocks, so they only order; the incarnation breaks exact ties.
    """
    return (mine.started, mine.incarnation) > (other.started, other.incarnation)
