"""Benchmark of the policy engine on FACTS.md workloads A and B.

``run()`` returns the figures as a dict and prints a small table: load time,
query time and a one-fact change (then query) at 1k/10k/100k, and the time to
absorb a one-row change incrementally against a full re-evaluation (a fresh
Engine loading everything), as a ratio. Medians of a few runs; under two
minutes in all.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from congress_ha.engine import Engine

WORKLOAD_A = ["p(x) :- q(x), r(x)", "s(x) :- q(x), not r(x)"]
WORKLOAD_B = ["j(x) :- a(x, y), b(y, z), c(z, x)"]


def _data_a(n: int) -> dict[str, list[tuple]]:
    return {"q": [(i,) for i in range(n)], "r": [(i,) for i in range(n)]}


def _data_b(n: int) -> dict[str, list[tuple]]:
    return {"a": [(i, i + 1) for i in range(n)], "b": [(i + 1, i + 2) for i in range(n)],
            "c": [(i + 2, i) for i in range(n)]}


def _load(rules: list[str], data: dict[str, list[tuple]]) -> Engine:
    eng = Engine()
    eng.create_policy("c")
    for text in rules:
        eng.insert_rule("c", text)
    for table, rows in data.items():
        eng.apply_delta("ds", table, rows, [])
    return eng


def _timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _select_all(eng: Engine, tables: list[str]) -> None:
    for table in tables:
        eng.select("c", table)


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _qualify(rules: list[str], tables: list[str]) -> list[str]:
    out = []
    for text in rules:
        for t in tables:
            text = text.replace(f" {t}(", f" ds:{t}(").replace(f"not ds:{t}(", f"not ds:{t}(")
        out.append(text)
    return out


def _workload(name: str, rules: list[str], data_fn, queries: list[str], change,
              sizes: list[int]) -> dict:
    results = {}
    for n in sizes:
        runs = 3 if n <= 10_000 else 2
        loads, query_times, changes, change_queries = [], [], [], []
        for _ in range(runs):
            data = data_fn(n)
            start = time.perf_counter()
            eng = _load(rules, data)
            loads.append(time.perf_counter() - start)
            query_times.append(_timed(_select_all, eng, queries))
            eng.query("c", f"{queries[0]}(0)")  # builds the lookup index once
            table, row = change(n)
            changes.append(_timed(eng.apply_delta, "ds", table, [row], []))
            eng.apply_delta("ds", table, [], [row])
            changes.append(_timed(eng.apply_delta, "ds", table, [row], []))
            change_queries.append(_timed(eng.query, "c", f"{queries[0]}({n})"))
        results[n] = {
            "facts": sum(len(v) for v in data_fn(n).values()),
            "load_s": _median(loads),
            "query_s": _median(query_times),
            "change_ms": _median(changes) * 1000,
            "change_then_query_ms": (_median(changes) + _median(change_queries)) * 1000,
        }
    return results


def _incremental_vs_full(sizes: list[int]) -> dict:
    rules = _qualify(WORKLOAD_A, ["q", "r"])
    results = {}
    for n in sizes:
        data = _data_a(n)
        eng = _load(rules, data)
        incremental = []
        for k in range(5):
            row = (n + k,)
            incremental.append(_timed(eng.apply_delta, "ds", "q", [row], []))
        full = []
        for k in range(2):
            grown = {"q": data["q"] + [(n + k,)], "r": data["r"]}
            full.append(_timed(_load, rules, grown))
        inc, fl = _median(incremental), _median(full)
        results[n] = {"incremental_ms": inc * 1000, "full_s": fl, "ratio": fl / inc}
    return results


def run() -> dict:
    sizes = [1_000, 10_000, 100_000]
    figures = {
        "A": _workload("A", _qualify(WORKLOAD_A, ["q", "r"]), _data_a, ["p", "s"],
                       lambda n: ("q", (n,)), sizes),
        "B": _workload("B", _qualify(WORKLOAD_B, ["a", "b", "c"]), _data_b, ["j"],
                       lambda n: ("c", (n + 2, n)), sizes),
        "incremental_vs_full": _incremental_vs_full([10_000, 100_000]),
    }
    print(f"{'workload':<9}{'N':>8}{'facts':>8}{'load s':>9}{'query s':>9}"
          f"{'change ms':>11}{'chg+query ms':>14}")
    for name in ("A", "B"):
        for n, f in figures[name].items():
            print(f"{name:<9}{n:>8}{f['facts']:>8}{f['load_s']:>9.3f}{f['query_s']:>9.4f}"
                  f"{f['change_ms']:>11.3f}{f['change_then_query_ms']:>14.3f}")
    print(f"{'N':>8}{'incremental ms':>16}{'full s':>9}{'ratio':>10}")
    for n, f in figures["incremental_vs_full"].items():
        print(f"{n:>8}{f['incremental_ms']:>16.3f}{f['full_s']:>9.3f}{f['ratio']:>10.0f}")
    return figures


if __name__ == "__main__":
    run()
