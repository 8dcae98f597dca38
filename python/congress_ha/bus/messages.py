"""What travels on the bus, as dataclasses with a plain-dict wire form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

ROLE_API_PE = "api-pe"
ROLE_DATASOURCES = "datasources"
ROLE_ALL = "all"


def member_id(node_id: str, role: str) -> str:
    """A process's name on the bus: one api-pe and one DSD may share a node."""
    return f"{node_id}:{role}"


def _from_dict(cls, data: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Heartbeat:
        return _from_dict(cls, data)


@dataclass
class TableDelta:
    datasource: str
    incarnation: str        # the publishing DSD's: seqs restart with it
    seq: int
    table: str
    added: list[list]
    removed: list[list]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableDelta:
        return _from_dict(cls, data)


@dataclass
class Snapshot:
    datasource: str
    incarnation: str
    seq: int
    schema: dict[str, list[str]]
    tables: dict[str, list[list]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        return _from_dict(cls, data)
