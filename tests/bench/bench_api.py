"""Benchmark of the REST API: reading a 1k-row table against a minimal endpoint.

One ``congress-ha-server --all`` (fake:// transport, SQLite) serves both.  A
push datasource gets 1000 rows through ``PUT .../rows``; then keep-alive
clients (http.client, THREADS threads) read ``GET /v1/data-sources/bench/
tables/rows/rows`` and ``GET /healthz`` in alternating rounds, each bounded by
a request count and a time.  ``run()`` returns requests/s and p50/p99 latency
of each, and the ratio of requests/s (target >= 0.5, DESIGN.md section 7).
It also reads the server's CPU time (/proc) around each round: CPU ms per
request is steadier than requests/s on a machine shared with other work.

    python -m tests.bench.bench_api
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tests.support.http import request
from tests.support.procs import Cluster, wait_for

ROWS = 1000
THREADS = 4
ROUNDS = 3                    # alternating rounds per endpoint; medians reported
PER_ROUND = 2000              # requests per round, at most ...
ROUND_SECONDS = 4.0           # ... and at most this long
ROWS_PATH = "/v1/data-sources/bench/tables/rows/rows"
MINIMAL_PATH = "/healthz"


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round(port: int, path: str, count: int, seconds: float, pid: int | None = None) -> dict:
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    remaining = [count]
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: list[float] = []
        try:
            while time.monotonic() < deadline:
                with lock:
                    if remaining[0] <= 0:
                        break
                    remaining[0] -= 1
                start = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                mine.append(time.perf_counter() - start)
                if resp.status != 200:
                    failures[0] += 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    cpu0 = _cpu_seconds(pid) if pid else 0.0
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    cpu = _cpu_seconds(pid) - cpu0 if pid else 0.0
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "failed": failures[0], "seconds": round(elapsed, 3),
            "server_cpu_ms": 1000 * cpu / n if n else None,
            "rps": n / elapsed if elapsed else 0.0,
            "p50_ms": 1000 * latencies[n // 2] if n else None,
            "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else None}


def _summary(rounds: list[dict]) -> dict:
    return {"rps": round(statistics.median(r["rps"] for r in rounds), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 3),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 3),
            "server_cpu_ms": round(statistics.median(r["server_cpu_ms"] for r in rounds), 3),
            "requests": sum(r["requests"] for r in rounds),
            "failed": sum(r["failed"] for r in rounds), "rounds": rounds}


def _seed(port: int) -> int:
    status, body = request(port, "POST", "/v1/data-sources", {
        "name": "bench", "driver": "push",
        "config": {"tables": {"rows": ["id", "name", "size", "ratio"]}}})
    assert status == 201, body
    rows = [[i, f"server-{i:04d}", i * 7, i / 3] for i in range(ROWS)]
    wait_for(lambda: request(port, "PUT", "/v1/data-sources/bench/tables/rows/rows",
                             rows)[0] == 200, 30, "the push datasource to accept rows")
    wait_for(lambda: len(request(port, "GET", ROWS_PATH)[1]["results"]) == ROWS, 30,
             "the pushed rows in the replica")
    status, body = request(port, "GET", ROWS_PATH)
    return len(json.dumps(body))


def run(rows: int = ROWS) -> dict:
    global ROWS
    ROWS = rows
    base = Path(tempfile.mkdtemp(prefix="bench-api-"))
    cluster = Cluster(base, "fake://")
    proc = cluster.add("solo", ["--all"])
    proc.start()
    try:
        wait_for(lambda: _answers(proc.api_port), 30, "the API to answer")
        body_bytes = _seed(proc.api_port)
        for path in (MINIMAL_PATH, ROWS_PATH):        # warm up both
            _round(proc.api_port, path, 200, 2.0)
        minimal, table = [], []
        for _ in range(ROUNDS):
            minimal.append(_round(proc.api_port, MINIMAL_PATH, PER_ROUND, ROUND_SECONDS,
                                  proc.pid))
            table.append(_round(proc.api_port, ROWS_PATH, PER_ROUND, ROUND_SECONDS, proc.pid))
        m, t = _summary(minimal), _summary(table)
        return {"rows": ROWS, "threads": THREADS, "body_bytes": body_bytes,
                "minimal": m, "table": t,
                "ratio": round(t["rps"] / m["rps"], 3) if m["rps"] else None,
                "cpu_ratio": round(m["server_cpu_ms"] / t["server_cpu_ms"], 3)
                if t["server_cpu_ms"] else None,
                "target_ratio": 0.5}
    finally:
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def _answers(port: int) -> bool:
    try:
        return request(port, "GET", MINIMAL_PATH, timeout=1.0)[0] == 200
    except OSError:
        return False


def report(r: dict) -> str:
    lines = [f"API read of a {r['rows']}-row table ({r['body_bytes']} bytes) vs {MINIMAL_PATH}, "
             f"{r['threads']} keep-alive clients, one api-pe node",
             f"{'endpoint':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>7} "
             f"{'failed':>6}"]
    for label, key in ((MINIMAL_PATH, "minimal"), (ROWS_PATH, "table")):
        s = r[key]
        lines.append(f"{label:<44} {s['rps']:>9.1f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
                     f"{s['server_cpu_ms']:>7.3f} {s['failed']:>6}")
    lines.append(f"ratio table/minimal: {r['ratio']:.2f} req/s, {r['cpu_ratio']:.2f} by server "
                 f"CPU per request (target >= {r['target_ratio']})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
