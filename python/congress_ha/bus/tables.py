"""Table publication with sequence numbers, and the PE's replica (pure).

The DSD's ``TablePublisher`` turns each new table content into a delta with the
next per-datasource sequence number.  A PE's ``TableReplica`` applies deltas in
order; a gap, a new DSD incarnation, or a heartbeat announcing a sequence it
has not reached within ``behind_grace`` makes it ask for a snapshot, buffering
deltas meanwhile, and resume from the snapshot (the clone pattern).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from congress_ha.bus.messages import Snapshot, TableDelta

Row = tuple


@dataclass
class Change:
    """What a replica's tables did, for the policy engine."""

    datasource: str
    table: str
    added: list[Row]
    removed: list[Row]


class TablePublisher:
    """The DSD side: current tables and sequence numbers of each datasource."""

    def __init__(self, incarnation: str):
        self.incarnation = incarnation
        self.seqs: dict[str, int] = {}
        self.schemas: dict[str, dict[str, list[str]]] = {}
        self.tables: dict[str, dict[str, set[Row]]] = {}

    def add_datasource(self, name: str, schema: dict[str, list[str]]) -> None:
        self.seqs.setdefault(name, 0)
        self.schemas[name] = schema
        self.tables.setdefault(name, {t: set() for t in schema})

    def set_schema(self, name: str, schema: dict[str, list[str]]) -> None:
        """A driver that learns its tables as it reads (file) says them here."""
        self.schemas[name] = schema

    def remove_datasource(self, name: str) -> None:
        for d in (self.seqs, self.schemas, self.tables):
            d.pop(name, None)

    def replace(self, datasource: str, table: str, rows) -> TableDelta | None:
        """New full content of one table; the delta to publish, or None if unchanged."""
        new = {tuple(r) for r in rows}
        current = self.tables[datasource].setdefault(table, set())
        added, removed = new - current, current - new
        if not added and not removed:
            return None
        self.tables[datasource][table] = new
        self.seqs[datasource] += 1
        return TableDelta(datasource, self.incarnation, self.seqs[datasource], table,
                          sorted(list(r) for r in added), sorted(list(r) for r in removed))

    def snapshot(self, datasource: str) -> Snapshot:
        return Snapshot(datasource, self.incarnation, self.seqs[datasource],
                        self.schemas[datasource],
                        {t: [list(r) for r in rows]
                         for t, rows in self.tables[datasource].items()})


@dataclass
class _Replica:
    incarnation: str | None = None
    seq: int = 0
    synced: bool = False
    tables: dict[str, set[Row]] = field(default_factory=dict)
    schema: dict[str, list[str]] = field(default_factory=dict)
    buffer: list[TableDelta] = field(default_factory=list)
    behind_since: float | None = None
    published: tuple[str, int] | None = None  # (DSD incarnation, its latest seq) as last heard


class TableReplica:
    """A PE's copy of every datasource's tables, kept in sequence."""

    def __init__(self, behind_grace: float, buffer_limit: int = 10000):
        self.behind_grace = behind_grace
        self.buffer_limit = buffer_limit
        self.replicas: dict[str, _Replica] = {}
        self.resyncs = 0
        self.gaps = 0

    # -- events ---------------------------------------------------------------

    def on_delta(self, delta: TableDelta) -> list[Change]:
        rep = self.replicas.setdefault(delta.datasource, _Replica())
        if rep.published is not None and rep.published[0] == delta.incarnation \
                and delta.seq > rep.published[1]:
            rep.published = (delta.incarnation, delta.seq)
        if not rep.synced or rep.incarnation != delta.incarnation:
            self._buffer(rep, delta)
            return []
        if delta.seq <= rep.seq:
            return []  # a copy of what we have
        if delta.seq != rep.seq + 1:
            self.gaps += 1
            rep.synced = False
            self._buffer(rep, delta)
            return []
        return [self._apply(delta.datasource, rep, delta)]

    def on_heartbeat(self, dsd_incarnation: str, seqs: dict[str, int],
                     now: float) -> list[Change]:
        """A DSD announced its datasources and latest sequence numbers."""
        changes: list[Change] = []
        for name in list(self.replicas):
            if name not in seqs and self.replicas[name].incarnation == dsd_incarnation:
                changes.extend(self._drop(name))
        for name, seq in seqs.items():
            rep = self.replicas.setdefault(name, _Replica())
            rep.published = (dsd_incarnation, seq)
            if rep.incarnation != dsd_incarnation:
                rep.synced = False
            if rep.synced and seq > rep.seq:
                if rep.behind_since is None:
                    rep.behind_since = now
                elif now - rep.behind_since > self.behind_grace:
                    rep.synced = False  # deltas were lost: resync
            else:
                rep.behind_since = None
        return changes

    def on_snapshot(self, snap: Snapshot) -> list[Change]:
        rep = self.replicas.setdefault(snap.datasource, _Replica())
        changes = []
        new_tables = {t: {tuple(r) for r in rows} for t, rows in snap.tables.items()}
        for table in set(rep.tables) | set(new_tables):
            old, new = rep.tables.get(table, set()), new_tables.get(table, set())
            if old != new:
                changes.append(Change(snap.datasource, table, sorted(new - old),
                                      sorted(old - new)))
        rep.tables = new_tables
        rep.schema = snap.schema
        rep.incarnation = snap.incarnation
        rep.seq = snap.seq
        rep.synced = True
        rep.behind_since = None
        self.resyncs += 1
        pending, rep.buffer = sorted(rep.buffer, key=lambda d: d.seq), []
        for delta in pending:
            if delta.incarnation == snap.incarnation:
                changes.extend(self.on_delta(delta))
        return changes

    # -- views ----------------------------------------------------------------

    def needs_snapshot(self) -> list[str]:
        return sorted(n for n, r in self.replicas.items() if not r.synced)

    def is_synced(self, datasources) -> bool:
        return all(n in self.replicas and self.replicas[n].synced for n in datasources)

    def seqs(self) -> dict[str, int]:
        return {n: r.seq for n, r in self.replicas.items()}

    def lags(self) -> dict[str, int]:
        """How many sequence numbers each datasource is behind the DSD's latest as last
        heard; only where both are of one DSD incarnation (else unknown, left out)."""
        return {n: max(0, r.published[1] - r.seq) for n, r in self.replicas.items()
                if r.published is not None and r.published[0] == r.incarnation}

    def synced(self) -> dict[str, bool]:
        return {n: r.synced for n, r in self.replicas.items()}

    def rows(self, datasource: str, table: str) -> set[Row]:
        rep = self.replicas.get(datasource)
        return set(rep.tables.get(table, set())) if rep else set()

    # -- internals ------------------------------------------------------------

    def _buffer(self, rep: _Replica, delta: TableDelta) -> None:
        rep.buffer.append(delta)
        if len(rep.buffer) > self.buffer_limit:
            del rep.buffer[: len(rep.buffer) - self.buffer_limit]

    def _apply(self, name: str, rep: _Replica, delta: TableDelta) -> Change:
        rows = rep.tables.setdefault(delta.table, set())
        added = [tuple(r) for r in delta.added]
        removed = [tuple(r) for r in delta.removed]
        rows.difference_update(removed)
        rows.update(added)
        rep.seq = delta.seq
        if rep.behind_since is not None:
            rep.behind_since = None
        return Change(name, delta.table, added, removed)

    def _drop(self, name: str) -> list[Change]:
        rep = self.replicas.pop(name)
        return [Change(name, t, [], sorted(rows)) for t, rows in rep.tables.items() if rows]
