"""One real deployment on a 3-node lab: converge, a second run that changes
nothing, the resources started and every member ready on the bus.

scripts/deploy-lab.sh with pcs, and molecule (create, converge, idempotence,
verify, destroy) with crmsh, each on its own lab, always taken down.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from .conftest import ANSIBLE, REPO, lab_name, need_root, run, tool

# Two deploys (each may take deploy-lab.sh's 420 s on a loaded machine) or a
# molecule run (600 s): more than pytest.ini's 300 s.
pytestmark = pytest.mark.timeout(1200)

RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)


def recap(output: str) -> dict[str, dict[str, int]]:
    hosts = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)),
                          "unreachable": int(m.group(4)), "failed": int(m.group(5))}
             for m in RECAP.finditer(output)}
    assert hosts, f"no PLAY RECAP in the output:\n{output[-4000:]}"
    return hosts


def deploy(lab: str, shell: str) -> tuple[float, dict[str, dict[str, int]], str]:
    t0 = time.monotonic()
    proc = run([str(REPO / "scripts" / "deploy-lab.sh"), lab, shell], timeout=420)
    return time.monotonic() - t0, recap(proc.stdout), proc.stdout


def test_deploy_lab_converges_then_changes_nothing(lab: str) -> None:
    first_s, first, out = deploy(lab, "pcs")
    assert all(h["failed"] == 0 and h["unreachable"] == 0 for h in first.values()), first
    assert "congress-api-pe-clone started on every node" in out
    second_s, second, _ = deploy(lab, "pcs")
    assert {name: h["changed"] for name, h in second.items()} == \
        {name: 0 for name in second}, second
    print(f"deploy-lab.sh {lab}: first run {first_s:.0f} s, second run {second_s:.0f} s")

    lab_cmd = tool("congress-ha-lab")
    crm = run([lab_cmd, "--name", lab, "exec", "n1", "--", "crm_mon", "--one-shot"]).stdout
    assert re.search(r"Started: \[ \S+-n1 \S+-n2 \S+-n3 \]", crm), crm
    assert re.search(r"congress-datasources\s+\(ocf:congress:datasources\):\s+Started", crm), crm

    # Every member on the bus and ready, seen from another node.
    deadline = time.monotonic() + 30
    while True:
        status = json.loads(run([lab_cmd, "--name", lab, "exec", "n2", "--",
                                 str(REPO / ".venv" / "bin" / "congress-ha-ctl"),
                                 "status", "--json"]).stdout)
        ready = sorted(n["member"] for n in status["nodes"] if n["ready"])
        api = [m for m in ready if m.endswith(":api-pe")]
        dsd = [m for m in ready if m.endswith(":datasources")]
        if len(api) == 3 and len(dsd) == 1:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)


def test_molecule_scenario_passes_with_crmsh() -> None:
    need_root()
    molecule = tool("molecule")
    name = lab_name()
    try:
        proc = run([molecule, "test"], cwd=ANSIBLE, timeout=600, check=False,
                   env={"MOLECULE_LAB": name, "MOLECULE_CLUSTER_SHELL": "crmsh",
                        "NO_COLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin"})
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        assert proc.returncode == 0, output[-8000:]
        for step in ("converge", "idempotence", "verify", "destroy"):
            assert f"{step}: Executed: Successful" in output, f"{step}\n{output[-8000:]}"
    finally:
        run([tool("congress-ha-lab"), "--name", name, "down"], check=False, timeout=120)
