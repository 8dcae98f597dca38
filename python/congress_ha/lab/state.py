"""The lab's state folder: <root>/<name>/ (default root /var/tmp/congress-ha-lab).

Layout:
  lab.json              the plan (nodes, addresses, options)
  power.sock            the power switch (a path-based unix socket: it crosses netns)
  power.pid / power.log the power switch daemon
  ssh/id_ed25519        the lab key (authorized for root on every node)
  nodes/<short>/        per node: node.json (PID 1's config), pid.json (recorded PIDs),
                        status.json (boot phase), console.log, sshd_config, host key,
                        root/... (the private /etc/corosync, /var/lib/pacemaker, ...)

/var/tmp rather than /run: nodes mount a private tmpfs on /run, and they must still
see the power switch's socket and the lab key.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .plan import LabPlan


@dataclass(frozen=True)
class ProcRecord:
    """A recorded process: its PID and its start time, so that a reused PID is not ours."""

    pid: int
    start: int

    def to_json(self) -> list[int]:
        return [self.pid, self.start]

    @classmethod
    def from_json(cls, data) -> ProcRecord:
        return cls(int(data[0]), int(data[1]))

    @classmethod
    def of(cls, pid: int) -> ProcRecord:
        return cls(pid, start_time(pid))

    def alive(self) -> bool:
        try:
            stat = _stat_fields(self.pid)
        except OSError:
            return False
        return stat[0] != "Z" and int(stat[19]) == self.start

    def kill(self, sig: int = signal.SIGKILL) -> bool:
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def _stat_fields(pid: int) -> list[str]:
    # Fields after "(comm)": state is index 0, starttime (field 22) is index 19.
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2 :].split()


def start_time(pid: int) -> int:
    return int(_stat_fields(pid)[19])


def write_json(path: Path, data) -> None:
    # 0600: the lab's plan and the infra node's config hold the lab's password.
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(data, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def load_plan(state_dir: Path) -> LabPlan | None:
    data = read_json(state_dir / "lab.json")
    return LabPlan.from_json(data) if data else None


def save_plan(plan: LabPlan) -> None:
    write_json(plan.state_dir / "lab.json", plan.to_json())


def node_pids(plan: LabPlan, short: str) -> dict[str, ProcRecord]:
    data = read_json(plan.state_dir / "nodes" / short / "pid.json", {}) or {}
    return {k: ProcRecord.from_json(v) for k, v in data.items() if k in ("holder", "init")}


def power_pid(state_dir: Path) -> ProcRecord | None:
    data = read_json(state_dir / "power.pid")
    return ProcRecord.from_json(data) if data else None


def list_labs(root: Path) -> list[str]:
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir())
    except OSError:
        return []
