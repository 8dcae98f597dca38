"""What travels on the bus: one dataclass per message (pure data).

The field names are the wire format: a message goes out as ``wire.dump(m)``
and is taken in as ``wire.parse(cls, data)``, which refuses what does not fit.
Which topic and method carries which message is declared in ``contract.py``.
The wire form is the one the releases before the contract sent, field for
field, so old and new processes understand each other during an upgrade
(docs/architecture.md, "The bus contract").

Nothing here does I/O or imports the runtime, so the pure leader machine
(``leader.py``) takes ``ActionRequest`` just as it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from congress_ha.bus.wire import MAX_ITEMS, MAX_ROWS, Most, Rows, Scalar

ROLE_API_PE = "api-pe"
ROLE_DATASOURCES = "datasources"
ROLE_ALL = "all"

Names = Annotated[list[str], Most(MAX_ITEMS)]


def member_id(node_id: str, role: str) -> str:
    """A process's name on the bus: one api-pe and one DSD may share a node."""
    return f"{node_id}:{role}"


# -- topic heartbeat (fanout) -------------------------------------------------


@dataclass
class Heartbeat:
    member: str
    node_id: str
    incarnation: str
    roles: list[str]
    ready: bool
    started: float          # wall clock, only to order two processes with one id
    beat: int               # counts up per incarnation
    seqs: dict[str, int] = field(default_factory=dict)  # DSD: latest seq per datasource
    leader: str | None = None        # DSD: its action leader's member id
    leader_changes: int = 0          # DSD
    reason: str = ""                 # why not ready, for operators

    @property
    def is_pe(self) -> bool:
        return ROLE_API_PE in self.roles or ROLE_ALL in self.roles

    @property
    def is_dsd(self) -> bool:
        return ROLE_DATASOURCES in self.roles or ROLE_ALL in self.roles


@dataclass
class Goodbye:
    """A process stops cleanly: its peers drop it at once."""

    member: str
    incarnation: str


@dataclass
class PolicyChanged:
    revision: int


@dataclass
class DatasourcesChanged:
    """The datasources in the database changed: the DSD reloads them."""


# -- topic tables (fanout) ----------------------------------------------------


@dataclass
class TableDelta:
    datasource: str
    incarnation: str        # the publishing DSD's: seqs restart with it
    seq: int
    table: str
    added: Rows
    removed: Rows


# -- topic dsd: casts ---------------------------------------------------------


@dataclass(frozen=True)
class ActionRequest:
    """One action-execution request as a PE casts it; the leader machine's input."""

    action_id: str
    pe: str
    incarnation: str
    datasource: str
    action: str
    args: tuple[Scalar, ...] = ()

    @property
    def sender(self) -> tuple[str, str]:
        return (self.pe, self.incarnation)


# -- topic dsd: calls and their replies ---------------------------------------


@dataclass
class SnapshotRequest:
    datasource: str


@dataclass
class Snapshot:
    datasource: str
    incarnation: str
    seq: int
    schema: dict[str, Names]
    tables: dict[str, Rows]


@dataclass
class LeaderStatusRequest:
    pass


@dataclass
class LeaderChangeView:
    age: float              # seconds ago
    old: str | None
    new: str | None
    reason: str


@dataclass
class LeaderStatus:
    """What ``congress-ha-ctl leader`` shows of one DSD."""

    dsd: str
    incarnation: str
    leader: str | None
    leader_incarnation: str | None
    leader_for: float | None
    counters: dict[str, int]
    executed_total: int
    skipped_by_journal: int
    failed_actions: int
    shadow_log: int
    history: list[LeaderChangeView]


@dataclass
class PushRows:
    """A push as API nodes of release 0.1 send it: the DSD checks and stores it."""

    datasource: str
    table: str
    # Rows by position or by column name: the push driver checks each and names
    # the bad one (a 400 at the API), so the bus only bounds their number.
    rows: Annotated[list[Any], Most(MAX_ROWS)]


@dataclass
class PushStored:
    """An API node stored a push of ``table``: publish what is stored now."""

    datasource: str
    table: str


@dataclass
class Pushed:
    ok: bool
    rows: int


@dataclass
class DatasourceStatusRequest:
    datasource: str


@dataclass
class DatasourceStatus:
    """Congress's datasource status, as ``GET /v1/data-sources/ID/status`` gives it."""

    initialized: bool
    number_of_updates: int
    last_updated: str | None
    last_error: str | None
    seq: int | None
    dsd: str


@dataclass
class ExecuteDirect:
    datasource: str
    action: str
    args: Annotated[list[Scalar], Most(MAX_ITEMS)]


@dataclass
class RefreshRequest:
    datasource: str


@dataclass
class Done:
    ok: bool = True


@dataclass
class Error:
    """The reply of a call that failed. ``kind``: invalid, not_found, unsupported or
    failed (the API answers 400, 404, 503 and 503); forged, stale or replayed for a
    request whose seal did not hold (bus/seal.py)."""

    error: str
    kind: str
