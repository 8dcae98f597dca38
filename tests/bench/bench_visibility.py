"""Benchmark: how long a policy write on one PE takes to be read on the others.

Three PEs on a private RabbitMQ and one SQLite database. ``writes`` rules are
created through the API of pe1; after each answer, pe2 and pe3 are read every
5 ms until both answer with the rule (the broadcast path). Then ``missed``
rules are written straight into the database, as a writer whose broadcast was
lost would leave them, and all three PEs are read until they answer (the
POLICY_POLL path). Reports p50, p99 and max of each.

    python -m tests.bench.run --only visibility
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from congress_ha.roles.policy_engine import POLICY_POLL
from congress_ha.store.db import open_engine, session_factory
from congress_ha.store.policies import PolicyStore
from tests.bench.bench_failover import _pct
from tests.support.broker import running_broker
from tests.support.http import request
from tests.support.procs import Cluster, wait_for
from tests.support.visibility import measure


def _stats(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(_pct(values, 50) * 1000, 1),
            "p99_ms": round(_pct(values, 99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1)}


def run(writes: int = 200, missed: int = 10) -> dict:
    base = Path(tempfile.mkdtemp(prefix="chbench-visibility-"))
    try:
        with running_broker("chbenchvis") as broker:
            c = Cluster(base, broker.url)
            pes = [c.add_pe(f"pe{i}") for i in (1, 2, 3)]
            try:
                for p in pes:
                    p.start()
                wait_for(lambda: all(p.healthy("api-pe", 10) for p in pes), 60, "PEs ready")
                ports = [p.api_port for p in pes]
                assert request(ports[0], "POST", "/v1/policies", {"name": "vis"})[0] == 201
                api = measure(ports[0], ports[1:], "vis", writes, 60.0)
                store = PolicyStore(session_factory(open_engine(c.db_url)))
                direct = measure(ports[0], ports, "vis", missed, 60.0, store=store)
            finally:
                c.stop_all()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"broadcast": _stats(api), "missed_broadcast": _stats(direct),
            "policy_poll_s": POLICY_POLL}


def report(r: dict) -> str:
    lines = ["   write on pe1, read on the other PEs      n    p50 ms   p99 ms   max ms"]
    for key, label in (("broadcast", "after the broadcast"),
                       ("missed_broadcast", f"broadcast lost (poll {r['policy_poll_s']} s)")):
        s = r[key]
        lines.append(f"   {label:<38} {s['n']:>4} {s['p50_ms']:>9} {s['p99_ms']:>8} "
                     f"{s['max_ms']:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    result = run()
    print(report(result))
