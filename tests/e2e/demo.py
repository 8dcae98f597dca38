"""`make demo`: a 3-node cluster on this host, deployed, failed over twice, explained.

    python -m tests.e2e.demo [--name LAB] [--shell pcs|crmsh] [--token MS]
                             [--png FILE] [--down]

It brings up a lab (``congress-ha-lab up --nodes 3 --no-cluster``), deploys
congress-ha onto it with ``scripts/deploy-lab.sh``, loads a policy that turns
a ticker (20 rows/s) into logged actions, then, while actions flow, kills the
node that runs the DSD, brings it back, and kills the node of the DSD's
action leader.  It prints a timeline (faults, what Pacemaker moved, leader
changes, actions per second) and the failover figures, writes the timeline
as a PNG, and leaves the lab up to look around (``--down`` removes it).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests.e2e.cluster import Cluster, check_ticks, wait_for
from tests.e2e.lab import LAB_BIN, REPO, LabDriver, unique_lab_name

RESULTS = REPO / "bench" / "results"


class Watcher(threading.Thread):
    """Samples placement and leader every few hundred ms; records what changed."""

    def __init__(self, c: Cluster, t0: float) -> None:
        super().__init__(daemon=True)
        self.c, self.t0 = c, t0
        self.events: list[tuple[float, str, str]] = []  # (time, kind, text)
        self.dsd_track: list[tuple[float, str | None]] = []
        self.leader_track: list[tuple[float, str | None]] = []
        self.stop_flag = threading.Event()

    def note(self, kind: str, text: str, t: float | None = None) -> None:
        self.events.append((t or time.time(), kind, text))

    def run(self) -> None:
        online = dsd = leader = None
        clone = None
        while not self.stop_flag.is_set():
            t = time.time()
            p = self.c.placement()
            if p is not None:
                if online is not None:
                    for n in sorted(online - p.online):
                        self.note("pacemaker", f"{short(n)} left the cluster", t)
                    for n in sorted(p.online - online):
                        self.note("pacemaker", f"{short(n)} rejoined the cluster", t)
                online = set(p.online)
                where = p.dsd[0] if len(p.dsd) == 1 else None
                if where != dsd:
                    what = f"started on {short(where)}" if where else "stopped"
                    self.note("pacemaker", f"DSD {what}", t)
                    dsd = where
                if clone is not None and p.clone != clone:
                    self.note("pacemaker", "api-pe clone on "
                              + (", ".join(short(n) for n in sorted(p.clone)) or "no node"), t)
                clone = set(p.clone)
                self.dsd_track.append((t, where))
            live = sorted(online or self.c.nodes)
            new_leader = self.c.leader(via=live)
            if new_leader != leader and new_leader is not None:
                self.note("leader", f"action leader {leader or '-'} -> {new_leader}", t)
                leader = new_leader
            self.leader_track.append((t, leader))
            self.stop_flag.wait(0.3)


def short(node: str | None) -> str:
    return node.rsplit("-", 1)[-1] if node else "-"


def rate_per_second(actions: list[dict], start: float, end: float) -> list[tuple[int, int]]:
    counts = Counter(int(a["executed_at"] - start) for a in actions
                     if start <= a["executed_at"] < end and a["action"] == "log")
    return [(s, counts.get(s, 0)) for s in range(int(end - start) + 1)]


def plot(png: Path, t0: float, end: float, per_s, kills, watcher: Watcher,
         figures: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.3]})
    xs = [s for s, _ in per_s]
    ax.bar(xs, [n for _, n in per_s], width=1.0, align="edge", color="#4c72b0",
           label="actions executed per second")
    ymax = max([n for _, n in per_s] + [25]) * 1.35
    for f in figures:
        k = f["kill"] - t0
        ax.axvline(k, color="#c44e52", lw=2)
        ax.text(k + 0.3, ymax * 0.93, f"kill {short(f['node'])}\n({f['what']})",
                color="#c44e52", va="top", fontsize=9)
        if f.get("resume") is not None:
            r = f["kill"] + f["resume"] - t0
            ax.annotate("", xy=(r, ymax * 0.62), xytext=(k, ymax * 0.62),
                        arrowprops={"arrowstyle": "<->", "color": "#333333"})
            ax.text((k + r) / 2, ymax * 0.66, f"{f['resume']:.1f} s", ha="center",
                    fontsize=9)
    for t, kind, _text in watcher.events:
        if kind == "leader":
            ax.plot([t - t0], [ymax * 0.05], marker="v", color="#dd8452", ms=9)
    ax.plot([], [], marker="v", color="#dd8452", ls="", label="action leader changed")
    ax.set_ylim(0, ymax)
    ax.set_ylabel("actions / s")
    # Above the axes: inside, it would hide a kill's label or a bar.
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=9,
              frameon=False)
    ax.set_title(title, fontsize=11, pad=24)
    ax.grid(axis="y", alpha=0.3)

    nodes = sorted({n for _, n in watcher.dsd_track if n} |
                   {lead.split(":")[0] for _, lead in watcher.leader_track if lead})
    ypos = {n: i for i, n in enumerate(nodes)}

    def steps(track, key, color, label, dy):
        pts = [(t - t0, ypos.get(key(v))) for t, v in track]
        xs_, ys_ = [], []
        for x, y in pts:
            xs_.append(x)
            ys_.append(None if y is None else y + dy)
        ax2.step(xs_, [float("nan") if y is None else y for y in ys_], where="post",
                 color=color, lw=3, label=label)

    steps(watcher.dsd_track, lambda v: v, "#55a868", "DSD runs on (Pacemaker)", 0.08)
    steps(watcher.leader_track, lambda v: v.split(":")[0] if v else None, "#dd8452",
          "action leader's node", -0.08)
    for f in figures:
        ax2.axvline(f["kill"] - t0, color="#c44e52", lw=2)
    ax2.set_yticks(range(len(nodes)), [short(n) for n in nodes])
    ax2.set_ylim(-0.6, len(nodes) - 0.4)
    ax2.set_xlabel("seconds since the start of the run")
    ax2.legend(loc="upper left", fontsize=8, ncol=2)
    ax2.grid(axis="x", alpha=0.3)
    ax2.set_xlim(0, end - t0)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def kill_and_recover(c: Cluster, w: Watcher, node: str, what: str) -> dict:
    fenced = c.fence_count(node)
    w.note("fault", f"KILL {short(node)} ({what}): power off")
    t_kill = c.d.kill(node)
    w.events[-1] = (t_kill, "fault", w.events[-1][2])
    first = c.wait_actions_after(t_kill, 90, f"an action after killing {node}")
    w.note("action", "first action executed after the kill", first["executed_at"])
    c.wait_dealt_with(node, fenced)
    wait_for(lambda: (p := c.placement(avoid=(node,))) and len(p.dsd) == 1
             and p.dsd[0] != node, 60, f"the DSD off {node}")
    return {"node": node, "what": what, "kill": t_kill,
            "resume": first["executed_at"] - t_kill}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.e2e.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default=None, help="lab name (default demo + 4 random)")
    ap.add_argument("--shell", default="pcs", choices=["pcs", "crmsh"])
    ap.add_argument("--token", type=int, default=1000, help="corosync token, ms")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--down", action="store_true", help="take the lab down at the end")
    args = ap.parse_args(argv)
    name = args.name or unique_lab_name("demo")
    lab = f"{LAB_BIN} --name {name}"

    started = time.monotonic()
    phases: list[tuple[str, float]] = []

    def say(msg: str) -> None:
        """One progress line: time since `make demo` began this script, then what."""
        print(f"[demo {name} +{time.monotonic() - started:5.1f}s] {msg}", flush=True)

    def phase_done(what: str, since: float) -> None:
        phases.append((what, time.monotonic() - since))
        say(f"{what}: done in {time.monotonic() - since:.1f} s")

    say(f"phase 1/5: bringing up a 3-node lab (token {args.token} ms)")
    t = time.monotonic()
    d = LabDriver.up(name, nodes=3, token=args.token, no_cluster=True)
    phase_done("lab up", t)
    ok = False
    try:
        say(f"phase 2/5: deploying with scripts/deploy-lab.sh {name} {args.shell} "
            f"(log: {d.files}/deploy.log)")
        t = time.monotonic()
        d.deploy(args.shell)
        phase_done("deployed", t)
        say("phase 3/5: waiting for the service, then loading the policy")
        t = time.monotonic()
        c = Cluster(d)
        c.wait_healthy(timeout=180, flowing=False)
        c.load_workload()
        c.wait_healthy(timeout=60)
        say("policy loaded: execute[out:log(n)] :- ticks:tick(n)   (20 ticks/s)")
        # The policy's first evaluation runs the ticker's whole window at once:
        # start the timeline once the rate is steady.
        c.wait_actions_after(time.time() + 3, 20, "3 s of steady actions")
        phase_done("service healthy, actions flowing", t)
        t0 = time.time()
        w = Watcher(c, t0)
        w.start()
        time.sleep(0)  # let the watcher take its first sample
        wait_for(lambda: len(w.dsd_track) > 0, 20, "the first sample")
        c.wait_actions_after(time.time() + 5, 20, "5 s of steady actions")

        figures = []
        dsd = c.dsd_node()
        say(f"phase 4/5: killing {dsd}, which runs the DSD")
        t = time.monotonic()
        figures.append(kill_and_recover(c, w, dsd, "DSD"))
        say(f"FIRST FAILOVER: first action {figures[-1]['resume']:.2f} s after the kill; "
            f"bringing {dsd} back")
        c.restore()
        w.note("repair", f"{short(dsd)} back (powered on, cluster stack up)")
        c.wait_actions_after(time.time() + 5, 20, "5 s of steady actions")

        leader = wait_for(c.leader, 20, "an action leader")
        victim = leader.split(":")[0]
        with_dsd = victim == c.dsd_node()
        phase_done("first failover and repair", t)
        say(f"phase 5/5: killing {victim}, node of the action leader {leader}"
            + (" (and of the DSD)" if with_dsd else ""))
        t = time.monotonic()
        figures.append(kill_and_recover(c, w, victim, "leader PE + DSD" if with_dsd
                                        else "leader PE"))
        say(f"first action {figures[-1]['resume']:.2f} s after the kill; bringing {victim} back")
        c.restore()
        w.note("repair", f"{short(victim)} back (powered on, cluster stack up)")
        c.wait_actions_after(time.time() + 5, 20, "5 s of steady actions")
        phase_done("second failover and repair", t)
        w.stop_flag.set()
        w.join(10)
        end = time.time()

        actions = c.actions()
        per_s = rate_per_second(actions, t0, end)
        ticks = check_ticks(actions, since=t0)
        print()
        print("Timeline (seconds since the start; actions/s in brackets)")
        evs = sorted(w.events)
        rate = dict(per_s)
        for t, kind, text in evs:
            s = int(t - t0)
            print(f"  +{t - t0:6.2f}s  [{rate.get(s, 0):2d}/s]  {kind:9}  {text}")
        print()
        print("Actions executed per second:")
        line = " ".join(f"{n:2d}" for _, n in per_s)
        for i in range(0, len(per_s), 20):
            print(f"  +{i:3d}s  " + line[i * 3:(i + 20) * 3])
        print()
        print("Failover (time from the kill to the next executed action):")
        for f in figures:
            print(f"  kill {f['node']:12} ({f['what']}): {f['resume']:.2f} s")
        print(f"Actions: {ticks['executed']} ticks executed, {len(ticks['lost'])} lost, "
              f"{len(ticks['duplicated'])} duplicated")
        png = args.png or RESULTS / f"demo-{name}.png"
        plot(png, t0, end, per_s, None, w, figures,
             f"congress-ha lab {name}: 3 nodes, token {args.token} ms, actions from a "
             "20/s ticker")
        print(f"Timeline plot: {png}")
        print("Phases (seconds):")
        for what, secs in phases:
            print(f"  {what:34} {secs:6.1f}")
        print(f"  {'total, this script':34} {time.monotonic() - started:6.1f}")
        ok = True
    finally:
        if args.down or not ok:
            if not ok and not args.down:
                print(f"\nThe demo failed; the lab stays up to look at it. Remove it with:\n"
                      f"  {lab} down", file=sys.stderr)
            else:
                say("taking the lab down")
                d.close()
    if not args.down:
        # HTTPS with the lab's CA (the lab deploys TLS on every link) and the token.
        curl = ('curl -s --cacert /etc/congress-ha/tls/ca.pem '
                '-H "X-Auth-Token: $(cat /etc/congress-ha/api-token)"')
        print(f"""
The lab {name} is still up. Look around:
  {lab} exec n1 -- crm_mon -1                 # the cluster, from node 1
  {lab} exec n1 -- congress-ha-ctl status     # every process on the bus
  {lab} exec n1 -- congress-ha-ctl leader     # the DSD's action leader and its history
  {lab} exec n1 -- sh -c '{curl} https://{d.address('n1')}:1789/v1/ha/status'
  tail -f {c.action_log}                      # every executed action
  {lab} kill n2 ; {lab} start n2              # a fault of your own
Take it down:
  {lab} down""")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - one clear line for the user, no traceback
        print(f"make demo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
