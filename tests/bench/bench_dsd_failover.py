"""DSD failover in a real cluster: the DSD's node is killed, how soon do actions resume?

For each corosync token (1000 ms, and corosync's default 3000 ms), one
3-node lab (``congress-ha-lab up --no-cluster --token T``, deployed with
``scripts/deploy-lab.sh``), a 20/s ticker turned into logged actions, and an
``ocf:heartbeat:Dummy`` primitive kept on the DSD's node (colocated with it,
with the DSD's meta attributes), then ``kills`` times: power off the DSD's
node, and measure side by side, from the power off:

- dsd: to the first action executed by the new DSD (the action log);
- floor: to the end of the Dummy's start on its new node (the mtime of the
  Dummy's state file there): what Pacemaker alone needs to move a resource;
- over: dsd - floor, what our agent and service add (target <= 1.5 s).

Then the killed node is brought back and the cluster waits until healthy.
Over the whole run: tick actions lost (numbers never executed) and
duplicated.  ``python -m tests.bench.bench_dsd_failover [--kills N]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import time

from tests.e2e.cluster import DSD, Cluster, check_ticks, wait_for
from tests.e2e.lab import LabDriver, unique_lab_name

TOKENS = (1000, 3000)
DUMMY = "bench-dummy"
DUMMY_STATE = "/run/congress-bench-dummy.state"  # /run is private to each node
TARGET_OVER_FLOOR = 1.5


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def add_dummy(c: Cluster, via: str) -> None:
    """A Dummy with the DSD's meta attributes and constraints style, on the DSD's node."""
    r = c.crm(via, "cibadmin", "--query", "--xpath", f"//primitive[@id='{DUMMY}']")
    if r.returncode == 0:
        return
    crm = (
        f"primitive {DUMMY} ocf:heartbeat:Dummy params state={DUMMY_STATE} "
        "op monitor interval=10s timeout=20s "
        "meta migration-threshold=3 failure-timeout=60s resource-stickiness=200\n"
        f"colocation {DUMMY}-with-dsd inf: {DUMMY} {DSD}\n"
    )
    r = c.d.run(via, ["crm", "configure", "load", "update", "-"], input=crm, timeout=60)
    assert r.returncode == 0, f"adding {DUMMY}: {r.stdout}{r.stderr}"
    wait_for(lambda: (p := c.placement()) and p.extra.get(DUMMY) == p.dsd, 60,
             f"{DUMMY} started beside the DSD")


_LOG_TIME = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d\.\d+) ")


def _log_times(c: Cluster, node: str, text: str, after: float) -> list[float]:
    """Wall-clock times of pacemaker.log lines of ``node`` containing ``text``."""
    r = c.d.run(node, ["grep", "-F", text, "/var/log/pacemaker/pacemaker.log"], timeout=20)
    year = datetime.date.today().year
    out = []
    for line in r.stdout.splitlines():
        m = _LOG_TIME.match(line)
        if m:
            t = datetime.datetime.strptime(f"{year} {m.group(1)}",
                                           "%Y %b %d %H:%M:%S.%f").timestamp()
            if t > after:
                out.append(t)
    return out


def start_requested(c: Cluster, node: str, rsc: str, after: float) -> float | None:
    times = _log_times(c, node, f"Requesting local execution of start operation for {rsc} "
                       f"on {node}", after)
    return min(times) if times else None


def start_finished(c: Cluster, node: str, rsc: str, after: float) -> float | None:
    times = _log_times(c, node, f"Result of start operation for {rsc} on {node}: ok", after)
    return min(times) if times else None


def token_of(c: Cluster) -> int | None:
    r = c.d.run(c.nodes[0], ["corosync-cmapctl", "-g", "runtime.config.totem.token"])
    try:
        return int(r.stdout.rsplit("=", 1)[1])
    except (IndexError, ValueError):
        return None


def one_kill(c: Cluster) -> dict:
    p = wait_for(lambda: (p := c.placement()) and len(p.dsd) == 1
                 and p.extra.get(DUMMY) == p.dsd and p, 60, "DSD and Dummy together")
    victim = p.dsd[0]
    t_kill = c.d.kill(victim)
    first = c.wait_actions_after(t_kill, 90, "an action by the new DSD")
    q = wait_for(lambda: (q := c.placement(avoid=(victim,))) and len(q.dsd) == 1
                 and q.dsd[0] != victim and q.extra.get(DUMMY) == q.dsd and q, 60,
                 "the DSD and the Dummy moved")
    new = q.dsd[0]
    handed = wait_for(lambda: start_requested(c, new, DSD, t_kill), 30,
                      "the DSD's start request in pacemaker.log")
    d0 = wait_for(lambda: start_requested(c, new, DUMMY, t_kill), 60,
                  "the Dummy's start request in pacemaker.log")
    d1 = wait_for(lambda: start_finished(c, new, DUMMY, t_kill), 60,
                  "the Dummy's start result in pacemaker.log")
    dsd_s = first["executed_at"] - t_kill
    floor_s = handed + (d1 - d0) - t_kill
    c.restore()
    return {"victim": victim, "to": new, "dsd_s": round(dsd_s, 3),
            "floor_s": round(floor_s, 3), "over_s": round(dsd_s - floor_s, 3),
            "dummy_start_s": round(d1 - d0, 3),
            "dummy_done_s": round(d1 - t_kill, 3)}


def run_token(token: int, kills: int, budget: float, shell: str = "crmsh") -> dict:
    started = time.monotonic()
    d = LabDriver.up(unique_lab_name("bdf"), nodes=3, token=token, no_cluster=True)
    try:
        d.deploy(shell)
        c = Cluster(d)
        c.wait_healthy(timeout=180, flowing=False)
        c.load_workload()
        c.wait_healthy(timeout=60)
        add_dummy(c, c.nodes[0])
        t0 = time.time()
        rounds = []
        for i in range(kills):
            if rounds and time.monotonic() - started > budget:
                print(f"  token {token}: time budget spent after {len(rounds)} kills",
                      flush=True)
                break
            r = one_kill(c)
            rounds.append(r)
            print(f"  token {token} kill {i + 1}/{kills}: {r['victim']} -> {r['to']} "
                  f"dsd {r['dsd_s']:.2f} s, floor {r['floor_s']:.2f} s, "
                  f"over {r['over_s']:+.2f} s", flush=True)
        ticks = check_ticks(c.actions(), since=t0)
        dsd = [r["dsd_s"] for r in rounds]
        floor = [r["floor_s"] for r in rounds]
        over = [r["over_s"] for r in rounds]
        return {
            "token_ms": token, "effective_token_ms": token_of(c), "kills": len(rounds),
            "dsd_p50": _pct(dsd, 50), "dsd_max": max(dsd, default=None),
            "floor_p50": _pct(floor, 50), "floor_max": max(floor, default=None),
            "over_p50": _pct(over, 50), "over_max": max(over, default=None),
            "over_mean": round(statistics.fmean(over), 3) if over else None,
            "lost": len(ticks["lost"]), "lost_ticks": ticks["lost"][:50],
            "duplicated": len(ticks["duplicated"]),
            "duplicated_ticks": ticks["duplicated"][:50],
            "ticks_executed": ticks["executed"], "rounds": rounds,
        }
    finally:
        d.close()


def run(kills: int = 10, tokens: tuple[int, ...] = TOKENS, budget: float = 600.0,
        shell: str = "crmsh") -> dict:
    """``budget``: seconds for the whole bench; each token gets its share."""
    per = budget / len(tokens)
    return {"target_over_floor_s": TARGET_OVER_FLOOR, "kills_asked": kills, "shell": shell,
            "results": [run_token(t, kills, per, shell) for t in tokens]}


def report(r: dict) -> str:
    head = (f"{'token':>6} {'eff.':>6} {'kills':>5} {'dsd p50':>8} {'dsd max':>8} "
            f"{'floor p50':>9} {'floor max':>9} {'over p50':>8} {'over max':>8} "
            f"{'lost':>4} {'dup':>4}  target")
    lines = ["DSD failover: kill of the DSD's node -> first action of the new DSD, beside "
             "a Dummy's move (the floor)", head]

    def f(x):
        return "-" if x is None else f"{x:.2f}"

    for t in r["results"]:
        ok = (t["over_max"] is not None and t["over_max"] <= r["target_over_floor_s"]
              and t["lost"] == 0 and t["duplicated"] == 0)
        lines.append(f"{t['token_ms']:>6} {t['effective_token_ms'] or '-':>6} {t['kills']:>5} "
                     f"{f(t['dsd_p50']):>8} {f(t['dsd_max']):>8} {f(t['floor_p50']):>9} "
                     f"{f(t['floor_max']):>9} {f(t['over_p50']):>8} {f(t['over_max']):>8} "
                     f"{t['lost']:>4} {t['duplicated']:>4}  {'met' if ok else 'MISSED'}")
    lines.append(f"(seconds; target: dsd - floor <= {r['target_over_floor_s']} s at every "
                 "kill, 0 lost, 0 duplicated)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--budget", type=float, default=600.0)
    ap.add_argument("--tokens", type=int, nargs="*", default=list(TOKENS))
    ap.add_argument("--shell", choices=["pcs", "crmsh"], default="crmsh")
    args = ap.parse_args()
    from tests.bench.run import RESULTS

    r = run(args.kills, tuple(args.tokens), args.budget, args.shell)
    print(report(r))
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if tuple(args.tokens) == TOKENS else "-" + "-".join(map(str, args.tokens))
    out = RESULTS / f"dsd_failover{suffix}.json"
    out.write_text(json.dumps(r, indent=2))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
