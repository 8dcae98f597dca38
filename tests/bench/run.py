"""`make bench`: run the benchmarks, print their tables, write JSON.

    python -m tests.bench.run [--only NAME ...] [--quick]

Results go to bench/results/<name>.json.  Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def bench_engine(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_engine

    result = bench_engine.run()
    return result, ""


def bench_failover(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_failover

    kw = {"kills": 3, "terms": 3, "steady": 20.0} if quick else {}
    result = bench_failover.run(**kw)
    return result, bench_failover.report(result)


def bench_agents(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_agents

    result = bench_agents.run()
    return result, bench_agents.report(result)


def bench_api(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_api

    result = bench_api.run()
    return result, bench_api.report(result)


def bench_dsd_failover(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_dsd_failover

    result = bench_dsd_failover.run(kills=3 if quick else 10)
    return result, bench_dsd_failover.report(result)


def bench_visibility(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_visibility

    result = bench_visibility.run(writes=30 if quick else 200, missed=3 if quick else 10)
    return result, bench_visibility.report(result)


def bench_seal(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_seal

    result = bench_seal.run(quick)
    return result, bench_seal.report(result)


def bench_infra(quick: bool) -> tuple[dict, str]:
    from tests.bench import bench_infra

    result = bench_infra.run(faults_n=2 if quick else 5, windows=1 if quick else 3)
    return result, bench_infra.report(result)


BENCHES = {"engine": bench_engine, "api": bench_api, "agents": bench_agents,
           "failover": bench_failover, "dsd_failover": bench_dsd_failover,
           "visibility": bench_visibility, "seal": bench_seal, "infra": bench_infra}


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so every bench's finally stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", nargs="*", choices=sorted(BENCHES))
    p.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(BENCHES):
        print(f"== {name}", flush=True)
        started = time.monotonic()
        result, text = BENCHES[name](args.quick)
        if text:
            print(text)
        result["_meta"] = {"seconds": round(time.monotonic() - started, 1),
                           "quick": args.quick, "host": platform.node(),
                           "python": platform.python_version(),
                           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        out = RESULTS / f"{name}.json"
        out.write_text(json.dumps(result, indent=2, default=str))
        print(f"   -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
