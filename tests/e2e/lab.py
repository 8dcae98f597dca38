"""Drivers of the e2e suite: where the cluster runs and how a fault is made.

A test talks to the cluster through a :class:`Driver`: run a command on a
node, power a node off hard, bring it back, cut it off the network and heal
it, read a file the DSD wrote.  Everything above that (crm_mon, the REST API,
the action log) is in ``tests/e2e/cluster.py`` and is the same for every
driver.

- :class:`LabDriver`: a ``congress-ha-lab`` lab on this host (namespaces);
  kill is a power off of the node (SIGKILL of its PID 1), partition takes
  its link down.
- ``tests/e2e/vagrant.py``: real machines from an Ansible inventory, reached
  over ssh (``vagrant halt -f`` / ``vagrant up``, or sysrq for kills).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_BIN = str(Path(sys.executable).with_name("congress-ha-lab"))
DEPLOY_SCRIPT = REPO / "scripts" / "deploy-lab.sh"
FILES_ROOT = Path("/var/lib/congress-ha/files/e2e")

# What a node's PID 1 would start on a cluster lab (congress_ha/lab/init.py).
# `congress-ha-lab start` on a --no-cluster lab boots sshd only, so a node
# that was deployed onto and then powered off comes back without its cluster
# stack; the driver starts it again, as a machine's init system would.
_START_STACK = (
    "corosync-cfgtool -s >/dev/null 2>&1 || "
    "{ mkdir -p /var/log/corosync; setsid corosync -f </dev/null "
    ">>/var/log/corosync/console.log 2>&1 & "
    "i=0; until corosync-cfgtool -s >/dev/null 2>&1; do "
    "i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done; }; "
    "pidof pacemakerd >/dev/null || "
    "{ mkdir -p /var/log/pacemaker; chown hacluster:haclient /var/log/pacemaker; "
    "PCMK_logfile=/var/log/pacemaker/pacemaker.log setsid pacemakerd </dev/null "
    ">>/var/log/pacemaker/console.log 2>&1 & }"
)


class DriverError(RuntimeError):
    """A fault or a repair could not be made (the message says what and why)."""


class Driver:
    """What the e2e suite needs from the place the cluster runs."""

    #: a name for logs and files (lab name, or the inventory's stem)
    name: str
    #: the cluster nodes, as Pacemaker names them
    nodes: list[str]

    def address(self, node: str) -> str:
        raise NotImplementedError

    def run(self, node: str, argv: list[str], timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run ``argv`` as root on ``node``; never raises on a non-zero exit."""
        raise NotImplementedError

    def kill(self, node: str) -> float:
        """Power ``node`` off hard; returns the wall-clock time of its death."""
        raise NotImplementedError

    def start(self, node: str) -> None:
        """Power ``node`` on (a no-op if on), wait until it boots, cluster stack up."""
        raise NotImplementedError

    def partition(self, node: str) -> float:
        """Cut ``node`` off every other node; returns the wall-clock time of the cut."""
        raise NotImplementedError

    def heal(self, node: str) -> None:
        raise NotImplementedError

    def powered(self, node: str) -> bool:
        raise NotImplementedError

    def shared_path(self, filename: str) -> str:
        """A path that names the same file on every node (for the action log)."""
        raise NotImplementedError

    def read_text(self, path: str) -> str:
        """The file at ``path`` as every node wrote it (concatenated where not shared)."""
        raise NotImplementedError

    def power_events(self) -> list[dict] | None:
        """The power switch's history, where the driver has one (the lab's)."""
        return None

    def fence_requests(self) -> list[dict] | None:
        return None

    def close(self) -> None:
        """Release what the driver made (a lab is taken down)."""


def run_lab(name: str, *args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([LAB_BIN, "--name", name, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def unique_lab_name(prefix: str = "e2e") -> str:
    """1-9 lowercase letters and digits, unique per run (labs coexist on one host)."""
    return (prefix + uuid.uuid4().hex)[:min(9, len(prefix) + 4)]


class LabDriver(Driver):
    """A ``congress-ha-lab`` lab on this host, driven through its command line."""

    def __init__(self, name: str, owned: bool = False) -> None:
        from congress_ha.lab import plan as lab_plan
        from congress_ha.lab.state import load_plan

        self.name = name
        self.plan = load_plan(lab_plan.default_root() / name)
        if self.plan is None:
            raise DriverError(f"no lab named {name} (congress-ha-lab list)")
        self.nodes = [n.name for n in self.plan.cluster_nodes]
        self.owned = owned
        # Inside the default [drivers] file_allowed_dirs (the action log is there),
        # which the nodes share with the host as they share /var/lib.
        self.files = FILES_ROOT / name
        self.files.mkdir(parents=True, exist_ok=True)
        # The DSD runs as the service's user (made by `up`): it appends there.
        from congress_ha.lab.node import SERVICE_USER

        shutil.chown(self.files, SERVICE_USER, SERVICE_USER)

    # -- making and removing a lab -------------------------------------------------
    @classmethod
    def up(cls, name: str, nodes: int = 3, token: int = 1000,
           no_cluster: bool = True) -> LabDriver:
        args = ["up", "--nodes", str(nodes), "--token", str(token)]
        if no_cluster:
            args.append("--no-cluster")
        r = run_lab(name, *args, timeout=300)
        if r.returncode != 0:
            run_lab(name, "down")
            raise DriverError(f"congress-ha-lab up {name} failed (rc {r.returncode}):\n"
                              f"{r.stdout}\n{r.stderr}")
        return cls(name, owned=True)

    def deploy(self, shell: str = "crmsh", script: str | Path | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess:
        """Deploy the service onto the lab with scripts/deploy-lab.sh (or ``script``)."""
        script = Path(script or os.environ.get("CONGRESS_HA_E2E_DEPLOY") or DEPLOY_SCRIPT)
        if not script.exists():
            raise DriverError(f"{script} does not exist: it deploys the service onto a lab")
        log = self.files / "deploy.log"
        # The playbook's lab overlay fixes corosync's token at 1000 ms; the
        # lab's own --token is what the caller asked for.
        env = dict(os.environ)
        corosync = json.dumps({"congress_ha_cluster_corosync": {"token": self.plan.token_ms}},
                              separators=(",", ":"))  # one word: ANSIBLE_ARGS is split
        env["ANSIBLE_ARGS"] = f"{env.get('ANSIBLE_ARGS', '')} -e {corosync}".strip()
        with open(log, "ab") as out:
            r = subprocess.run(["sh", str(script), self.name, shell], stdout=out,
                               stderr=subprocess.STDOUT, timeout=timeout, check=False,
                               cwd=REPO, env=env)
        if r.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise DriverError(f"{script} {self.name} {shell} failed (rc {r.returncode}); "
                              f"end of {log}:\n{tail}")
        return r

    def close(self) -> None:
        if self.owned:
            r = run_lab(self.name, "down", timeout=300)
            if r.returncode != 0:
                sys.stderr.write(f"congress-ha-lab down {self.name}: {r.stdout}{r.stderr}\n")
            shutil.rmtree(self.files, ignore_errors=True)

    # -- the Driver interface --------------------------------------------------------
    def address(self, node: str) -> str:
        return self.plan.node(node).address

    def cli(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess:
        r = run_lab(self.name, *args, timeout=timeout)
        if r.returncode != 0:
            raise DriverError(f"congress-ha-lab {' '.join(args)}: rc {r.returncode}\n"
                              f"{r.stdout}{r.stderr}")
        return r

    def run(self, node, argv, timeout=30, input=None):
        try:
            return subprocess.run([LAB_BIN, "--name", self.name, "exec", node, "--", *argv],
                                  capture_output=True, text=True, timeout=timeout,
                                  input=input, check=False)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout}s")

    def power_events(self) -> list[dict]:
        """The lab power switch's history: {op, node, by, time, changed, password}."""
        from congress_ha.lab import power

        return power.request(self.plan.power_socket, {"op": "events"})["events"]

    def fence_requests(self) -> list[dict]:
        """The fence agent's requests to the switch (monitors too): {op, node, time, password}."""
        from congress_ha.lab import power

        return power.request(self.plan.power_socket, {"op": "fence_requests"})["requests"]

    def _event_time(self, op: str, node: str, after: float) -> float:
        events = self.power_events()
        times = [e["time"] for e in events
                 if e["op"] == op and e["node"] == node and e["time"] >= after]
        return min(times) if times else time.time()

    def kill(self, node: str) -> float:
        before = time.time()
        self.cli("kill", node)
        # The switch records the time right after SIGKILL of the node's PID 1;
        # our own clock would add the CLI's start-up (~0.3 s) to every figure.
        return self._event_time("off", self.plan.node(node).name, before - 0.001)

    def powered(self, node: str) -> bool:
        from congress_ha.lab import power

        name = self.plan.node(node).name
        nodes = power.request(self.plan.power_socket, {"op": "list"})["nodes"]
        return nodes.get(name) == "on"

    def start(self, node: str) -> None:
        self.cli("start", node, timeout=120)
        if not self.plan.cluster:
            r = self.run(node, ["sh", "-c", _START_STACK], timeout=60)
            if r.returncode != 0:
                raise DriverError(f"cannot start corosync/pacemaker on {node}: "
                                  f"{r.stdout}{r.stderr}")

    def partition(self, node: str) -> float:
        self.cli("partition", node)
        return time.time()

    def heal(self, node: str) -> None:
        self.cli("heal", node)

    def shared_path(self, filename: str) -> str:
        # /var/lib is the host's in every node (only a few folders are private).
        return str(self.files / filename)

    def read_text(self, path: str) -> str:
        p = Path(path)
        return p.read_text(errors="replace") if p.exists() else ""

    def node_log(self, node: str, rel: str) -> Path:
        """A file of the node's private /var/log, seen from the host."""
        short = self.plan.node(node).short
        return self.plan.state_dir / "nodes" / short / "root" / "var" / "log" / rel


def driver_from_env() -> Driver | None:
    """The driver for an existing cluster named by the environment, if any.

    ``CONGRESS_HA_E2E_INVENTORY``: an Ansible inventory of a deployed cluster
    (``make vagrant-test`` sets it); ``CONGRESS_HA_E2E_LAB``: an existing lab,
    already deployed (kept after the run).
    """
    inv = os.environ.get("CONGRESS_HA_E2E_INVENTORY")
    if inv:
        from tests.e2e.vagrant import SshDriver

        return SshDriver.from_inventory(inv)
    lab = os.environ.get("CONGRESS_HA_E2E_LAB")
    if lab:
        return LabDriver(lab, owned=False)
    return None
