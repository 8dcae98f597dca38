"""Leader switchover: 3 api-pe + 1 DSD on a private broker, a steady action stream.

20 SIGKILLs and 20 SIGTERMs of the current leader PE (each victim restarted
before the next round), then a steady phase with no fault.  For each fault:
- gap: the longest pause in action execution around it (last action before
  the fault to the first after it);
- resume: from the fault to the first action executed after it.
Over the whole run: actions lost (tick numbers missing) and repeated.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.support.broker import Broker
from tests.support.procs import Cluster, wait_for

RATE = 25.0


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def _more_actions(cluster, n: int, what: str) -> None:
    target = len(cluster.actions()) + n
    wait_for(lambda: len(cluster.actions()) >= target, 20, what)


def _leader(dsd) -> str | None:
    st = dsd.status()
    return st.get("datasources", {}).get("leader", {}).get("leader")


def _leader_changes(dsd) -> int:
    return dsd.status()["datasources"]["leader"]["counters"]["leader_changes"]


def run(kills: int = 20, terms: int = 20, steady: float = 300.0) -> dict:
    broker = Broker(prefix="chbench")
    base = Path(tempfile.mkdtemp(prefix="chbench-failover-"))
    broker.start()
    cluster = Cluster(base, broker.url)
    faults: list[tuple[str, float, str]] = []
    try:
        cluster.seed_datasources(rate=RATE, window=200)
        dsd = cluster.add_dsd("dsd1").start()
        pes = {f"pe{i}": cluster.add_pe(f"pe{i}").start() for i in (1, 2, 3)}
        wait_for(lambda: all(p.healthy("api-pe", 20) for p in pes.values()), 60, "PEs ready")
        wait_for(lambda: _leader(dsd), 20, "a leader")
        plan = ["SIGKILL"] * kills + ["SIGTERM"] * terms
        for i, kind in enumerate(plan, 1):
            wait_for(lambda: all(p.running() and p.healthy("api-pe", 20)
                                 for p in pes.values()), 60, "every PE ready")
            _more_actions(cluster, 10, "a steady stream")
            leader = wait_for(lambda: _leader(dsd), 20, "a leader")
            victim = pes[leader.split(":")[0]]
            t_fault = time.time()
            victim.signal(signal.SIGKILL if kind == "SIGKILL" else signal.SIGTERM)
            wait_for(lambda old=leader: _leader(dsd) not in (None, old), 10, "a new leader")
            victim.popen.wait(timeout=10)
            faults.append((kind, t_fault, leader))
            _more_actions(cluster, 10, "actions after the fault")
            victim.start()
            print(f"  fault {i}/{len(plan)}: {kind} {leader}", flush=True)
        wait_for(lambda: all(p.healthy("api-pe", 20) for p in pes.values()), 60, "PEs ready")
        changes0 = _leader_changes(dsd)
        t0 = time.monotonic()
        while time.monotonic() - t0 < steady:
            time.sleep(1.0)
        steady_changes = _leader_changes(dsd) - changes0
        actions = cluster.actions()
    finally:
        cluster.stop_all()
        broker.cleanup()
    times = sorted(a["executed_at"] for a in actions)
    result: dict = {"rate_per_s": RATE, "actions": len(actions),
                    "steady_seconds": steady, "steady_leader_changes": steady_changes}
    for kind in ("SIGKILL", "SIGTERM"):
        gaps, resumes = [], []
        for k, t, _ in faults:
            if k != kind:
                continue
            before = [x for x in times if x <= t]
            after = [x for x in times if x > t]
            if before and after:
                gaps.append(after[0] - before[-1])
                resumes.append(after[0] - t)
        result[kind] = {
            "n": len(gaps),
            "gap_p50": _pct(gaps, 50), "gap_p99": _pct(gaps, 99), "gap_max": max(gaps),
            "resume_p50": _pct(resumes, 50), "resume_p99": _pct(resumes, 99),
            "resume_max": max(resumes)}
    ids = Counter(a["action_id"] for a in actions)
    ticks = sorted(a["args"][0] for a in actions)
    result["duplicated"] = sum(n - 1 for n in ids.values() if n > 1)
    result["lost"] = len(set(range(ticks[0], ticks[-1] + 1)) - set(ticks))
    if not os.environ.get("KEEP_BENCH_DIRS"):
        shutil.rmtree(base, ignore_errors=True)
    return result


def report(r: dict) -> str:
    lines = [f"leader switchover ({r['actions']} actions at {r['rate_per_s']:.0f}/s)",
             f"  {'fault':8} {'n':>3} {'gap p50':>8} {'gap p99':>8} {'gap max':>8} "
             f"{'resume p50':>10} {'resume p99':>10}"]
    for kind in ("SIGKILL", "SIGTERM"):
        k = r[kind]
        lines.append(f"  {kind:8} {k['n']:>3} {k['gap_p50']:8.3f} {k['gap_p99']:8.3f} "
                     f"{k['gap_max']:8.3f} {k['resume_p50']:10.3f} {k['resume_p99']:10.3f}")
    lines.append(f"  lost {r['lost']}, duplicated {r['duplicated']}, leader changes in "
                 f"{r['steady_seconds']:.0f}s of steady state: {r['steady_leader_changes']}")
    return "\n".join(lines)
