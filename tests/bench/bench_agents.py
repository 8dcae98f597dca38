"""OCF agent monitor cost: one monitor call at depth 0, 10 and 20 for both
agents, beside ocf:heartbeat:Dummy's monitor (the floor), over a private
broker with a DSD and a PE running.  Wall time and the CPU (user+sys) of the
agent and everything it runs, from os.wait4 of the agent process.

Also where a depth-10 call spends its time: the bare interpreter, importing
congress_ha.ctl, and the whole `congress-ha-ctl health` command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.broker import Broker
from tests.support.procs import Cluster, wait_for

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")
ROLES = ("api-pe", "datasources")


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall ms, CPU ms (user+sys of the child and its children), exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, proc.returncode


def _series(argv: list[str], env: dict[str, str], calls: int) -> dict:
    walls, cpus, codes = [], [], set()
    _time(argv, env)  # warm the page cache
    for _ in range(calls):
        wall, cpu, rc = _time(argv, env)
        walls.append(wall)
        cpus.append(cpu)
        codes.add(rc)
    return {"calls": calls, "exit_codes": sorted(codes),
            "wall_ms": {"median": _pct(walls, 50), "p99": _pct(walls, 99)},
            "cpu_ms": {"median": _pct(cpus, 50), "p99": _pct(cpus, 99)}}


def _ocf_env(base: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCF_")}
    env.update({"OCF_ROOT": "/usr/lib/ocf", "OCF_RESKEY_CRM_meta_interval": "10000",
                "OCF_RESKEY_CRM_meta_timeout": "20000", "HA_RSCTMP": str(base / "rsctmp"),
                "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
    env.update(extra)
    return env


def run(calls: int = 50) -> dict:
    base = Path(tempfile.mkdtemp(prefix="chbench-agents-"))
    (base / "rsctmp").mkdir()
    agents = REPO / "resource-agents"
    broker = Broker(prefix="chbenchag")
    broker.start()
    cluster = Cluster(base, broker.url)
    conf, _ = cluster.conf("bench1", None)
    envs = {role: _ocf_env(base, OCF_RESKEY_config=str(conf), OCF_RESKEY_node_id="bench1",
                           OCF_RESKEY_pid=str(base / f"{role}.pid"),
                           OCF_RESKEY_log=str(base / f"{role}.log"),
                           OCF_RESOURCE_INSTANCE=role)
            for role in ROLES}
    result: dict = {"calls": calls, "monitor": {}, "startup": {}}
    try:
        cluster.seed_datasources(rate=20, window=100)
        for role in ("datasources", "api-pe"):
            subprocess.run([str(agents / role), "start"], env=envs[role], check=True,
                           capture_output=True)
        wait_for(lambda: subprocess.run([str(agents / "api-pe"), "monitor"],
                                        env={**envs["api-pe"], "OCF_CHECK_LEVEL": "20"},
                                        capture_output=True).returncode == 0,
                 30, "api-pe ready at depth 20")
        dummy_env = _ocf_env(base, OCF_RESOURCE_INSTANCE="bench-dummy",
                             OCF_RESKEY_state=str(base / "dummy.state"))
        (base / "dummy.state").touch()
        result["monitor"]["Dummy"] = _series([str(DUMMY), "monitor"], dummy_env, calls)
        for role in ROLES:
            for depth in (0, 10, 20):
                result["monitor"][f"{role} depth {depth}"] = _series(
                    [str(agents / role), "monitor"],
                    {**envs[role], "OCF_CHECK_LEVEL": str(depth)}, calls)
        # Where depth 10 goes: the interpreter, the ctl import, the whole command.
        py = str(VENV_BIN / "python")
        plain = dict(os.environ)
        result["startup"]["python -c pass"] = _series([py, "-c", "pass"], plain, calls // 2)
        result["startup"]["python -c 'import congress_ha.ctl'"] = _series(
            [py, "-c", "import congress_ha.ctl"], plain, calls // 2)
        result["startup"]["ctl health --depth 10 (api-pe)"] = _series(
            [str(VENV_BIN / "congress-ha-ctl"), "health", "--role", "api-pe", "--depth", "10",
             "--config-file", str(conf)], plain, calls // 2)
        result["startup"]["ctl leader --json"] = _series(
            [str(VENV_BIN / "congress-ha-ctl"), "leader", "--json", "--config-file", str(conf)],
            plain, calls // 2)
        result["importtime_top"] = _importtime(py)
    finally:
        for role in ROLES:
            subprocess.run([str(agents / role), "stop"], env=envs[role], capture_output=True)
        broker.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    dummy = result["monitor"]["Dummy"]["wall_ms"]["median"]
    for series in result["monitor"].values():
        series["ratio_to_dummy"] = round(series["wall_ms"]["median"] / dummy, 2)
    return result


def _importtime(py: str, top: int = 8) -> list[tuple[str, float]]:
    """The heaviest cumulative imports of congress_ha.ctl (python -X importtime)."""
    out = subprocess.run([py, "-X", "importtime", "-c", "import congress_ha.ctl"],
                         capture_output=True, text=True).stderr
    rows = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].rstrip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


TARGETS = {0: "<= 2x Dummy", 10: "<= 100 ms", 20: "<= 300 ms"}


def report(result: dict) -> str:
    lines = [f"{'monitor call':24} {'wall med':>9} {'wall p99':>9} {'cpu med':>8} "
             f"{'x Dummy':>8} {'rc':>4}  target"]
    for name, s in result["monitor"].items():
        depth = int(name.rsplit(" ", 1)[1]) if "depth" in name else None
        lines.append(f"{name:24} {s['wall_ms']['median']:8.1f}ms {s['wall_ms']['p99']:8.1f}ms "
                     f"{s['cpu_ms']['median']:7.1f}ms {s['ratio_to_dummy']:7.2f}x "
                     f"{','.join(map(str, s['exit_codes'])):>4}  "
                     f"{TARGETS.get(depth, 'floor') if depth is not None else 'floor'}")
    lines.append("")
    lines.append("where a depth-10 call goes (medians):")
    for name, s in result["startup"].items():
        lines.append(f"  {name:40} {s['wall_ms']['median']:7.1f}ms wall "
                     f"{s['cpu_ms']['median']:7.1f}ms cpu")
    lines.append("heaviest imports of congress_ha.ctl (cumulative):")
    for mod, ms in result.get("importtime_top", []):
        lines.append(f"  {mod.strip():40} {ms:7.1f}ms")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
