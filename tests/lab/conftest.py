"""Fixtures of the lab tests: real labs (namespaces, corosync, pacemaker, RabbitMQ,
PostgreSQL) brought up once per session under unique names, always torn down.

Outside CI a host that cannot run a lab skips these tests; with CI=true that is a
failure, since CI must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from congress_ha.lab import plan as lab_plan
from congress_ha.lab import power
from congress_ha.lab.state import load_plan, node_pids

CI = os.environ.get("CI") == "true"
LAB_BIN = str(Path(sys.executable).with_name("congress-ha-lab"))
NEEDED = ["ip", "unshare", "nsenter", "sshd", "ssh", "ssh-keygen", "corosync", "pacemakerd",
          "crm_mon", "stonith_admin", "ping"]  # fmt: skip
NEEDED_FILES = ["/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/lib/postgresql/15/bin/initdb",
                "/usr/share/fence/fencing.py", LAB_BIN]  # fmt: skip


def require_lab_host() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    problems += [f"missing {b}" for b in NEEDED if not shutil.which(b)]
    problems += [f"missing {f}" for f in NEEDED_FILES if not os.path.exists(f)]
    if problems:
        msg = "cannot run a lab here: " + ", ".join(problems)
        if CI:
            pytest.fail(msg)
        pytest.skip(msg)


def unique_name(prefix: str) -> str:
    return (prefix + uuid.uuid4().hex)[:9]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def run_lab(name: str, *args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([LAB_BIN, "--name", name, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


class Lab:
    """A running lab, driven through the real `congress-ha-lab` command."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.plan = load_plan(lab_plan.default_root() / name)
        assert self.plan is not None

    def cli(self, *args: str, check: bool = True, timeout: float = 150):
        r = run_lab(self.name, *args, timeout=timeout)
        if check:
            assert r.returncode == 0, f"{args}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def exec(self, node: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return self.cli("exec", node, "--", *argv, check=False, timeout=timeout)

    def addr(self, short: str) -> str:
        return self.plan.node(short).address

    def init_pid(self, short: str) -> int | None:
        rec = node_pids(self.plan, short).get("init")
        return rec.pid if rec and rec.alive() else None

    def ssh_args(self) -> list[str]:
        return ["ssh", "-i", str(self.plan.ssh_key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]  # fmt: skip

    def crm_nodes(self, via: str = "n1") -> dict[str, dict]:
        from congress_ha.lab.lab import parse_crm_nodes

        r = self.exec(via, "crm_mon", "-1", "--output-as=xml", timeout=15)
        return parse_crm_nodes(r.stdout) if r.returncode == 0 else {}

    def online(self, via: str = "n1") -> set[str]:
        return {k for k, v in self.crm_nodes(via).items() if v.get("online") == "true"}

    def wait_all_online(self, timeout: float = 30, via: str = "n1") -> None:
        want = {n.name for n in self.plan.cluster_nodes}
        wait_for(lambda: want <= self.online(via), timeout, f"{sorted(want)} online")

    def power_events(self) -> list[dict]:
        return power.request(self.plan.power_socket, {"op": "events"})["events"]


def lab_up(name: str, *args: str) -> Lab:
    r = run_lab(name, "up", *args)
    if r.returncode != 0:
        run_lab(name, "down")
        raise AssertionError(f"up failed: rc {r.returncode}\n{r.stdout}\n{r.stderr}")
    return Lab(name)


@pytest.fixture(scope="session")
def cluster_lab():
    """A 3-node cluster with infra and fencing, shared by the lab tests."""
    require_lab_host()
    name = unique_name("tc")
    try:
        lab = lab_up(name, "--nodes", "3")
        yield lab
    finally:
        run_lab(name, "down")


@pytest.fixture(scope="session")
def plain_lab():
    """Two nodes without corosync/pacemaker and without infra (for Ansible-style use)."""
    require_lab_host()
    name = unique_name("tp")
    try:
        yield lab_up(name, "--nodes", "2", "--no-cluster", "--no-infra")
    finally:
        run_lab(name, "down")


@pytest.fixture
def healthy(cluster_lab):
    """The cluster lab, with every node on and online before and after the test."""
    for n in cluster_lab.plan.nodes:
        cluster_lab.cli("heal", n.short)
        cluster_lab.cli("start", n.short)
    cluster_lab.wait_all_online()
    yield cluster_lab
    for n in cluster_lab.plan.nodes:
        cluster_lab.cli("heal", n.short)
        cluster_lab.cli("start", n.short)
    cluster_lab.wait_all_online()
