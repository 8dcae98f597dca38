"""Interim action derivation, until the Datalog engine lands (issue 3).

``[policy_engine] action_relay = ticks:tick=out:log`` behaves like the policy
``execute[out:log(n)] :- ticks:tick(n)``: each row that becomes true in the
source table derives one action.  action_id follows the engine's scheme
(docs/architecture.md): the same on every PE for the same derivation.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from congress_ha.bus.tables import Change


@dataclass(frozen=True)
class DerivedAction:
    action_id: str
    datasource: str
    action: str
    args: tuple
    occurrence: int


def action_id(datasource: str, action: str, args, occurrence: int) -> str:
    canonical = json.dumps([datasource, action, list(args), occurrence],
                           separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class RelayError(ValueError):
    pass


def parse_relay(text: str) -> list[tuple[str, str, str, str]]:
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            src, dst = part.split("=")
            sds, stable = src.split(":")
            dds, act = dst.split(":")
        except ValueError:
            raise RelayError(f"[policy_engine] action_relay: {part!r} is not "
                             "SRC:TABLE=DST:ACTION") from None
        rules.append((sds.strip(), stable.strip(), dds.strip(), act.strip()))
    return rules


class RelayDeriver:
    def __init__(self, rules: list[tuple[str, str, str, str]]):
        self.rules = rules
        self.occurrences: Counter = Counter()

    def apply(self, changes: list[Change]) -> list[DerivedAction]:
        out = []
        for change in changes:
            for sds, stable, dds, act in self.rules:
                if (change.datasource, change.table) != (sds, stable):
                    continue
                for row in change.added:
                    key = (dds, act, tuple(row))
                    self.occurrences[key] += 1
                    n = self.occurrences[key]
                    out.append(DerivedAction(action_id(dds, act, row, n), dds, act,
                                             tuple(row), n))
        return out
