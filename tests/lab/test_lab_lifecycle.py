"""up and down: nothing left behind, failures clean up, stale labs are removed."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from congress_ha.lab import lab as lab_mod
from congress_ha.lab import netns, node
from congress_ha.lab.plan import default_root, plan_lab
from congress_ha.lab.state import ProcRecord, node_pids, power_pid

from .conftest import lab_up, require_lab_host, run_lab, unique_name


def _records(state_dir: Path, plan) -> list[ProcRecord]:
    recs = [power_pid(state_dir)]
    for n in plan.nodes:
        recs += list(node_pids(plan, n.short).values())
    return [r for r in recs if r]


def _assert_gone(name: str, recs: list[ProcRecord]) -> None:
    assert recs, "there were processes to check"
    assert not [r.pid for r in recs if r.alive()]
    assert netns.lab_netns(name) == []
    assert not (default_root() / name).exists()


def test_down_leaves_no_namespace_process_or_folder():
    require_lab_host()
    lab = lab_up(unique_name("td"), "--nodes", "1", "--no-infra")
    recs = _records(lab.plan.state_dir, lab.plan)
    r = run_lab(lab.name, "down")
    assert r.returncode == 0, r.stderr
    _assert_gone(lab.name, recs)
    assert "nothing to remove" in run_lab(lab.name, "down").stdout


def test_down_removes_a_stale_lab_whose_power_switch_and_records_are_gone():
    require_lab_host()
    lab = lab_up(unique_name("ts"), "--nodes", "2", "--no-cluster", "--no-infra")
    recs = _records(lab.plan.state_dir, lab.plan)
    # A crash: the power switch dies and the PID records are lost.
    power_pid(lab.plan.state_dir).kill(signal.SIGKILL)
    for n in lab.plan.nodes:
        (lab.plan.node_dir(n) / "pid.json").unlink()
    r = run_lab(lab.name, "down")
    assert r.returncode == 0, r.stderr
    _assert_gone(lab.name, recs)


def test_up_refuses_a_lab_that_already_exists(plain_lab):
    r = run_lab(plain_lab.name, "up", "--no-cluster", "--no-infra")
    assert r.returncode == 1
    assert "already exists" in r.stderr and "Traceback" not in r.stderr
    assert plain_lab.exec("n1", "true").returncode == 0  # the existing lab is untouched


def test_failed_up_cleans_up_after_itself(monkeypatch):
    require_lab_host()
    plan = plan_lab(unique_name("tf"), 2, cluster=False, infra=False)
    seen: list[ProcRecord] = []

    def boot_fails(p, n, boot_id, timeout):
        seen.extend(_records(p.state_dir, p))
        raise RuntimeError(f"node {n.name} did not boot (injected)")

    monkeypatch.setattr(node, "wait_ready", boot_fails)
    lines: list[str] = []
    with pytest.raises(lab_mod.LabError, match="injected"):
        lab_mod.up(plan, lines.append)
    assert any("cleaning up" in ln for ln in lines)
    _assert_gone(plan.name, seen)

