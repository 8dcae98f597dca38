"""What signing the bus costs (bus/seal.py): seal on the sender plus check on the
receiver, for a heartbeat and for table deltas of 1k, 100k and 1M rows.

    python -m tests.bench.run --only seal

Medians of 5 runs (3 for 1M rows), in milliseconds; docs/security.md quotes them.
"""

from __future__ import annotations

import statistics
import time

from congress_ha.bus.seal import Sealer, Seen, new_key

SIZES = (1_000, 100_000, 1_000_000)


def _cost(sender: Sealer, receiver: Sealer, topic: str, method: str, args: dict,
          runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        seal = sender.seal(topic, method, args)
        receiver.check(topic, method, seal, args, Seen())
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def run(quick: bool = False) -> dict:
    keys = [new_key().encode()]
    sender, receiver = Sealer(keys, "n2"), Sealer(keys, "n1")
    hb = {"hb": {"member": "n2:api-pe", "node_id": "n2", "incarnation": "0123456789ab",
                 "roles": ["api-pe"], "ready": True, "started": 1.8e9, "beat": 7,
                 "seqs": {}, "leader": None, "leader_changes": 0, "reason": "ready"}}
    result = {"heartbeat_ms": _cost(sender, receiver, "heartbeat", "heartbeat", hb, 50)}
    for n in SIZES[:2] if quick else SIZES:
        rows = [[f"web{i}", i, 2.5] for i in range(n)]
        args = {"delta": {"datasource": "in", "incarnation": "x", "seq": 1, "table": "t",
                          "added": rows, "removed": []}}
        result[f"delta_{n}_rows_ms"] = _cost(sender, receiver, "tables", "table_delta", args,
                                             3 if n >= 1_000_000 else 5)
    return result


def report(result: dict) -> str:
    lines = ["   seal + check (median ms)"]
    lines += [f"   {name.removesuffix('_ms'):<24} {value:10.3f}" for name, value in result.items()
              if name.endswith("_ms")]
    return "\n".join(lines)
