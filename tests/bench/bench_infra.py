"""The single-node infrastructure's faults, timed (issue 14).

On real processes (2 api-pe + 1 DSD, a private RabbitMQ and PostgreSQL, a 5/s
ticker turned into logged actions):

- broker: ``faults`` restarts of the broker; from its return (its port open
  again) to the first action executed after it;
- database: ``faults`` restarts of PostgreSQL; from its return to the first
  action executed after it (actions wait in the DSD for the journal);
- over the whole run, ticks lost (never executed) and duplicated;
- dead consumer: a DSD frozen with SIGSTOP (its host gone, its TCP connection
  not closed) keeps the one request the broker handed it (prefetch 1) until the
  broker closes its connection. For each AMQP heartbeat threshold, from the
  freeze to the broker dropping the connection, ``windows`` times.

``python -m tests.bench.bench_infra [--faults N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.broker import running_broker
from tests.support.postgres import Postgres
from tests.support.procs import Cluster, wait_for

HEARTBEATS = (6, 2)  # heartbeat_timeout_threshold: the default, and a shorter one


def _summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": statistics.median(values) if values else None,
            "max": max(values) if values else None, "values": [round(v, 3) for v in values]}


def faults(broker, pg, n: int) -> dict:
    from tests.integration.test_infra_faults import check_exactly_once, flowing, start, workload

    base = Path(tempfile.mkdtemp(prefix="chbench-infra-"))
    c = workload(base, broker.url, pg.create_database("b" + uuid.uuid4().hex[:12]))
    out: dict = {}
    try:
        start(c)
        gaps = []
        for _ in range(n):
            broker.restart()
            back = time.time()
            gaps.append(flowing(c, 3, timeout=90) - back)
        out["broker_restart_to_first_action_s"] = _summary(gaps)
        gaps = []
        for _ in range(n):
            pg.stop()
            pg.resume()
            back = time.time()
            gaps.append(flowing(c, 3, timeout=90) - back)
        out["database_restart_to_first_action_s"] = _summary(gaps)
        try:
            check_exactly_once(c, None)
            out["lost"] = out["duplicated"] = 0
        except AssertionError as exc:
            out["error"] = str(exc)[:300]
    finally:
        c.stop_all()
        shutil.rmtree(base, ignore_errors=True)
    return out


def _connections_of(broker, pid: int) -> int:
    r = broker.ctl("list_connections", "client_properties")
    return r.stdout.count(f":{pid}:")


def dead_consumer(broker, pg, windows: int) -> dict:
    out = {}
    for threshold in HEARTBEATS:
        base = Path(tempfile.mkdtemp(prefix="chbench-hb-"))
        c = Cluster(base, broker.url, db_url=pg.create_database("h" + uuid.uuid4().hex[:12]),
                    extra=f"[oslo_messaging_rabbit]\nheartbeat_timeout_threshold = {threshold}\n")
        c.seed_datasources(rate=1, window=5)
        times = []
        try:
            for i in range(windows):
                dsd = c.add_dsd(f"dsd{i}").start()
                wait_for(lambda d=dsd: d.healthy("datasources", 10), 60, "the DSD on the bus")
                pid = dsd.pid
                wait_for(lambda p=pid: _connections_of(broker, p) > 0, 30, "its connections")
                frozen = time.monotonic()
                os.kill(pid, signal.SIGSTOP)
                wait_for(lambda p=pid: _connections_of(broker, p) == 0, 120,
                         "the broker closing the frozen DSD's connections", interval=0.1)
                times.append(time.monotonic() - frozen)
                dsd.kill()
        finally:
            c.stop_all()
            shutil.rmtree(base, ignore_errors=True)
        out[f"heartbeat_timeout_threshold={threshold}"] = _summary(times)
    return out


def run(faults_n: int = 5, windows: int = 3) -> dict:
    pg = Postgres(prefix="chbench")
    try:
        pg.start()
        with running_broker("chbench") as broker:
            result = faults(broker, pg, faults_n)
            result["dead_consumer_window_s"] = dead_consumer(broker, pg, windows)
    finally:
        pg.cleanup()
    return result


def report(r: dict) -> str:
    lines = ["infrastructure faults (2 api-pe + 1 DSD, 5/s ticker)"]
    for key in ("broker_restart_to_first_action_s", "database_restart_to_first_action_s"):
        s = r.get(key)
        if s:
            lines.append(f"  {key:40} p50 {s['p50']:.2f} s  max {s['max']:.2f} s  "
                         f"(n={s['n']})")
    lines.append(f"  lost {r.get('lost', '?')}, duplicated {r.get('duplicated', '?')}"
                 + (f"  ERROR {r['error']}" if "error" in r else ""))
    for key, s in r.get("dead_consumer_window_s", {}).items():
        lines.append(f"  dead consumer dropped after, {key:30} p50 {s['p50']:.1f} s  "
                     f"max {s['max']:.1f} s (n={s['n']})")
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--faults", type=int, default=5)
    p.add_argument("--windows", type=int, default=3)
    a = p.parse_args()
    res = run(a.faults, a.windows)
    print(report(res))
    print(json.dumps(res, indent=2))
