"""The DSD's local action leader: a pure state machine (DESIGN.md 3.3).

Every policy engine (PE) sends every action request.  The DSD executes the
requests of one PE, its *leader*: the first ready PE it hears from, kept until
contact with it is lost (silence for ``peer_timeout``, a goodbye, or a new
incarnation).  Then the most recently heard live PE takes over, or, if none is
live, the next one heard.  No PE knows it is the leader; there is no election.

Requests from other PEs are not executed but kept in a bounded *shadow log*.
When the leader changes, the new leader's shadow entries that were never
executed are executed at once, so the actions the old leader did not send in
time are not lost.  As a safety net, an entry that no leader has matched within
``shadow_grace`` seconds is executed too (0 turns the net off).

This module does no I/O and has no clock: callers pass ``now`` (monotonic
seconds) and act on the returned ``Decision``.  Its input is the bus message
``ActionRequest`` as it arrives (``bus/messages.py`` is pure data too).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

from congress_ha.bus.messages import ActionRequest

Member = tuple[str, str]  # (pe member id, incarnation)
# One action request as a PE casts it: the bus message itself (pure data), the
# same object from the wire to the driver.
Request = ActionRequest
_EPSILON = 1e-3  # past a deadline by this much, so "silent > peer_timeout" holds


@dataclass(frozen=True)
class Execute:
    """Run this request now. ``reason``: leader, replay or grace."""

    request: Request
    reason: str


# Why the leader changed, in a word: the ``cause`` of every LeaderChange (the
# metrics count changes by it; ``reason`` is the sentence for people).
CAUSES = ("first_ready_pe", "next_ready_pe", "goodbye", "silent", "new_incarnation")


@dataclass(frozen=True)
class LeaderChange:
    at: float
    old: Member | None
    new: Member | None
    reason: str
    cause: str = ""


@dataclass
class Decision:
    execute: list[Execute] = field(default_factory=list)
    changes: list[LeaderChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Decision) -> None:
        self.execute.extend(other.execute)
        self.changes.extend(other.changes)
        self.warnings.extend(other.warnings)


@dataclass
class _Peer:
    incarnation: str
    last_heard: float
    ready: bool


@dataclass
class _Shadow:
    request: Request
    first_seen: float
    senders: set[Member]


@dataclass
class Counters:
    leader_changes: int = 0
    executed: int = 0
    replayed: int = 0
    grace_executed: int = 0
    duplicates: int = 0
    shadowed: int = 0
    shadow_dropped: int = 0


class LeaderState:
    """The DSD's view of the PEs, its leader, the shadow log and what ran."""

    def __init__(self, peer_timeout: float, shadow_size: int = 10000,
                 shadow_age: float = 60.0, shadow_grace: float = 2.0,
                 executed_memory: int = 100_000, history_size: int = 100):
        if peer_timeout <= 0 or shadow_size < 1 or shadow_age <= 0 or shadow_grace < 0:
            raise ValueError("peer_timeout and shadow_age must be > 0, shadow_size >= 1, "
                             "shadow_grace >= 0")
        self.peer_timeout = peer_timeout
        self.shadow_size = shadow_size
        self.shadow_age = shadow_age
        self.shadow_grace = shadow_grace
        self.executed_memory = executed_memory
        self.history_size = history_size
        self.leader: Member | None = None
        self.leader_since: float | None = None
        self.history: list[LeaderChange] = []
        self.counters = Counters()
        # Every change, to no leader too, by cause (CAUSES); never trimmed like history.
        self.changes_by_cause: dict[str, int] = dict.fromkeys(CAUSES, 0)
        self._peers: dict[str, _Peer] = {}
        self._shadow: OrderedDict[str, _Shadow] = OrderedDict()
        self._executed: OrderedDict[str, None] = OrderedDict()

    # -- events ---------------------------------------------------------------

    def heard(self, pe: str, incarnation: str, ready: bool, now: float) -> Decision:
        """A heartbeat (or any message) from ``pe`` arrived."""
        decision = self._expire(now)
        decision.extend(self._contact(pe, incarnation, ready, now))
        return decision

    def goodbye(self, pe: str, incarnation: str, now: float) -> Decision:
        """``pe`` stopped cleanly: drop it at once."""
        decision = self._expire(now)
        peer = self._peers.get(pe)
        if peer is not None and peer.incarnation == incarnation:
            del self._peers[pe]
            if self.leader == (pe, incarnation):
                decision.extend(self._lose_leader(now, "goodbye", "goodbye"))
        return decision

    def request(self, req: Request, now: float) -> Decision:
        """An action request arrived from ``req.pe``."""
        decision = self._expire(now)
        # A request is contact too, and only a ready PE derives actions.
        decision.extend(self._contact(req.pe, req.incarnation, True, now))
        if req.action_id in self._executed:
            self.counters.duplicates += 1
            self._shadow.pop(req.action_id, None)
            return decision
        if req.sender == self.leader:
            self._shadow.pop(req.action_id, None)
            decision.execute.append(self._run(req, "leader"))
            return decision
        entry = self._shadow.get(req.action_id)
        if entry is not None:
            entry.senders.add(req.sender)
            return decision
        self._shadow[req.action_id] = _Shadow(req, now, {req.sender})
        self.counters.shadowed += 1
        while len(self._shadow) > self.shadow_size:
            _, old = self._shadow.popitem(last=False)
            self.counters.shadow_dropped += 1
            decision.warnings.append(
                f"shadow log full ({self.shadow_size}): dropped unmatched action "
                f"{old.request.action_id} from {old.request.pe}")
        return decision

    def tick(self, now: float) -> Decision:
        """Time passes: lose silent peers, apply the shadow log's grace and age."""
        return self._expire(now)

    def next_deadline(self) -> float | None:
        """The earliest time at which ``tick`` can decide something, or None.

        The DSD sleeps until then instead of polling, so a silent leader is
        lost right when ``peer_timeout`` has passed, not up to a tick later.
        """
        times = []
        if self.leader is not None:
            peer = self._peers.get(self.leader[0])
            if peer is not None:
                times.append(peer.last_heard + self.peer_timeout + _EPSILON)
        if self._shadow:
            first = next(iter(self._shadow.values())).first_seen
            limit = self.shadow_grace if self.shadow_grace else self.shadow_age
            times.append(first + limit + _EPSILON)
        return min(times) if times else None

    def mark_executed(self, action_ids) -> None:
        """Record ids that already ran (the journal of an earlier DSD)."""
        for action_id in action_ids:
            self._remember(action_id)
            self._shadow.pop(action_id, None)

    # -- views ----------------------------------------------------------------

    def live_peers(self) -> dict[str, tuple[str, float, bool]]:
        return {pe: (p.incarnation, p.last_heard, p.ready) for pe, p in self._peers.items()}

    @property
    def shadow_len(self) -> int:
        return len(self._shadow)

    def was_executed(self, action_id: str) -> bool:
        return action_id in self._executed

    # -- internals ------------------------------------------------------------

    def _contact(self, pe: str, incarnation: str, ready: bool, now: float) -> Decision:
        decision = Decision()
        peer = self._peers.get(pe)
        if peer is not None and peer.incarnation != incarnation:
            # The process behind this id restarted: the old one is gone for good.
            del self._peers[pe]
            if self.leader == (pe, peer.incarnation):
                decision.extend(self._lose_leader(now, "new incarnation of the leader",
                                                  "new_incarnation"))
            peer = None
        if peer is None:
            self._peers[pe] = _Peer(incarnation, now, ready)
        else:
            peer.last_heard = now
            peer.ready = ready
        if self.leader is None and ready:
            first = not self.history
            reason = "first ready PE heard" if first else "next ready PE heard"
            decision.extend(self._set_leader((pe, incarnation), now, reason,
                                             "first_ready_pe" if first else "next_ready_pe"))
        return decision

    def _expire(self, now: float) -> Decision:
        decision = Decision()
        # Drop every silent peer first, so that a lost leader's successor is
        # chosen among PEs that are still live.
        leader_silent = None
        for pe, peer in list(self._peers.items()):
            silent = now - peer.last_heard
            if silent > self.peer_timeout:
                del self._peers[pe]
                if self.leader == (pe, peer.incarnation):
                    leader_silent = silent
        if leader_silent is not None:
            decision.extend(self._lose_leader(
                now, f"silent for {leader_silent:.3f}s > peer_timeout {self.peer_timeout}s",
                "silent"))
        while self._shadow:
            action_id, entry = next(iter(self._shadow.items()))
            age = now - entry.first_seen
            if self.shadow_grace and age > self.shadow_grace:
                del self._shadow[action_id]
                self.counters.grace_executed += 1
                decision.execute.append(self._run(entry.request, "grace"))
                decision.warnings.append(
                    f"action {action_id} from {entry.request.pe} not matched by the leader "
                    f"within shadow_grace {self.shadow_grace}s: executed by the safety net")
            elif age > self.shadow_age:
                del self._shadow[action_id]
                self.counters.shadow_dropped += 1
                decision.warnings.append(
                    f"action {action_id} from {entry.request.pe} not matched within "
                    f"shadow_log_age {self.shadow_age}s: dropped")
            else:
                break  # entries are in arrival order: the rest are younger
        return decision

    def _lose_leader(self, now: float, reason: str, cause: str) -> Decision:
        live = [(p.last_heard, pe, p.incarnation) for pe, p in self._peers.items() if p.ready]
        if live:
            _, pe, incarnation = max(live)
            return self._set_leader((pe, incarnation), now, f"leader lost ({reason})", cause)
        return self._set_leader(None, now, f"leader lost ({reason}); no live PE", cause)

    def _set_leader(self, new: Member | None, now: float, reason: str,
                    cause: str) -> Decision:
        decision = Decision()
        change = LeaderChange(now, self.leader, new, reason, cause)
        self.leader = new
        self.leader_since = now if new else None
        self.changes_by_cause[cause] += 1
        if new is not None:
            self.counters.leader_changes += 1
        self.history.append(change)
        del self.history[:-self.history_size]
        decision.changes.append(change)
        if new is not None:
            for action_id, entry in list(self._shadow.items()):
                if new in entry.senders:
                    del self._shadow[action_id]
                    self.counters.replayed += 1
                    # Executed as the new leader's own copy: same action_id, same args.
                    own = replace(entry.request, pe=new[0], incarnation=new[1])
                    decision.execute.append(self._run(own, "replay"))
        return decision

    def _run(self, req: Request, reason: str) -> Execute:
        self._remember(req.action_id)
        self.counters.executed += 1
        return Execute(req, reason)

    def _remember(self, action_id: str) -> None:
        self._executed[action_id] = None
        self._executed.move_to_end(action_id)
        while len(self._executed) > self.executed_memory:
            self._executed.popitem(last=False)
