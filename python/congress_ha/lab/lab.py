"""The lab's commands as functions: up, down, power, partition, status.

The CLI (cli.py) parses arguments and prints; everything here reports progress through
a `say` callable and raises LabError for expected failures.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from . import fence, netns, node
from . import tls as lab_tls
from .plan import LabPlan, NodePlan, PlanError
from .power import PowerError, request
from .state import ProcRecord, load_plan, node_pids, power_pid, save_plan, write_json

Say = Callable[[str], None]

REQUIRED = ["ip", "unshare", "nsenter", "mount", "sshd", "ssh-keygen", "openssl"]
CLUSTER_REQUIRED = ["corosync", "corosync-cfgtool", "pacemakerd", "crm_mon"]
INFRA_REQUIRED = ["/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/lib/postgresql/15/bin/initdb"]

BOOT_TIMEOUT = 90.0


class LabError(RuntimeError):
    """An expected failure: the message says what went wrong and what to do."""


class NotFound(LabError):
    pass


def _elapsed(t0: float) -> str:
    return f"{time.monotonic() - t0:.1f}s"


def preflight(plan: LabPlan) -> None:
    if os.geteuid() != 0:
        raise LabError("congress-ha-lab needs root (network namespaces, mounts)")
    needed = REQUIRED + (CLUSTER_REQUIRED if plan.cluster else [])
    needed += INFRA_REQUIRED if plan.infra else []
    missing = [b for b in needed if not (shutil.which(b) or os.access(b, os.X_OK))]
    if missing:
        raise LabError(f"missing programs: {', '.join(missing)} (run `make setup`)")
    conflicts = netns.routed_conflicts()
    if conflicts:
        raise LabError(
            "203.0.113.0/24 is routed or assigned on this host ("
            + "; ".join(conflicts)
            + "): the lab would shadow it, refusing to start"
        )
    if plan.state_dir.exists() or netns.lab_netns(plan.name):
        raise LabError(
            f"lab {plan.name} already exists (state {plan.state_dir}): "
            f"run `congress-ha-lab --name {plan.name} down` first"
        )


def open_lab(name: str, root: Path) -> LabPlan:
    plan = load_plan(root / name)
    if plan is None:
        raise NotFound(f"no lab {name} (no state in {root / name}); start one with "
                       f"`congress-ha-lab --name {name} up`")  # fmt: skip
    return plan


# -- up --------------------------------------------------------------------------------
def up(plan: LabPlan, say: Say) -> float:
    t0 = time.monotonic()
    preflight(plan)
    say(f"preflight ok: 203.0.113.0/24 unrouted, state in {plan.state_dir}")
    try:
        _build(plan, say, t0)
    except BaseException as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        say(f"up failed ({reason}): cleaning up")
        try:
            down(plan.name, plan.root, say)
        except LabError as e2:
            say(f"cleanup incomplete: {e2}")
        if isinstance(e, (LabError, KeyboardInterrupt)):
            raise
        raise LabError(str(e)) from e
    total = time.monotonic() - t0
    say(f"ready in {total:.1f}s: `congress-ha-lab --name {plan.name} status` shows it")
    return total


def ensure_service_user() -> None:
    """The service's system user and group on this host (DEFAULT_SERVICE_USER), as the
    playbook makes them: the nodes share the host's /etc/passwd, and the lab's TLS
    keys are readable by that group. `make uninstall` removes them."""
    name = node.SERVICE_USER
    deadline = time.monotonic() + 30
    while subprocess.run(["getent", "passwd", name], capture_output=True).returncode != 0:
        r = subprocess.run(["useradd", "--system", "--user-group", "--home-dir",
                            "/var/lib/congress-ha", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", "--comment", "congress-ha service", name],
                           capture_output=True, text=True)
        if r.returncode in (0, 9):  # 9: made meanwhile by another lab's up
            return
        # 1 with "cannot lock": another up (or the playbook) holds /etc/passwd.
        if "lock" not in r.stderr or time.monotonic() > deadline:
            raise LabError(f"cannot create the service user {name}: {r.stderr.strip()}")
        time.sleep(0.2)


def _build(plan: LabPlan, say: Say, t0: float) -> None:
    t = time.monotonic()
    (plan.state_dir / "nodes").mkdir(parents=True)
    os.chmod(plan.state_dir, 0o755)
    save_plan(plan)
    ssh = plan.state_dir / "ssh"
    ssh.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{plan.name} lab key",
                    "-f", str(plan.ssh_key)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    shutil.copy(str(plan.ssh_key) + ".pub", ssh / "authorized_keys")
    authkey = os.urandom(256) if plan.crypto else None
    ensure_service_user()
    ca = lab_tls.make_ca(plan.tls_dir, f"congress-ha lab {plan.name} CA")
    for n in plan.nodes:
        node.prepare(plan, n, authkey)
        node.install_tls(plan, n, ca)
    say(f"state, keys, node configs and TLS certificates (CA {ca.cert}) written "
        f"{_elapsed(t)}")

    t = time.monotonic()
    netns.create_lan(plan)
    for n in plan.nodes:
        netns.create_node_link(plan, n)
    say(f"network: bridge {plan.bridge} ({plan.bridge_address}) in netns {plan.lan_netns}, "
        f"{len(plan.nodes)} links {_elapsed(t)}")  # fmt: skip

    # Every lab, --no-cluster ones included: those are the labs the playbook
    # then fences with this agent (ansible/inventories/lab), and crmsh refuses a
    # stonith primitive whose agent is missing.
    changed = fence.install_agent()
    say(f"fence agent {fence.AGENT_PATH} {'installed' if changed else 'up to date'}")

    t = time.monotonic()
    start_power_switch(plan)
    say(f"power switch on {plan.power_socket} {_elapsed(t)}")

    boots = {}
    for n in plan.nodes:
        boots[n.name] = (time.monotonic(), _power(plan, "on", n)["boot_id"])
    for n in plan.nodes:
        start, boot_id = boots[n.name]
        node.wait_ready(plan, n, boot_id, BOOT_TIMEOUT - (time.monotonic() - start))
        what = ", ".join(node.services(node.init_pid(plan, n) or 0))
        say(f"node {n.name} up ({n.address}) {_elapsed(start)}: {what}")
    if plan.cluster:
        t = time.monotonic()
        wait_online(plan, plan.cluster_nodes, timeout=60)
        say(f"cluster {plan.name}: {len(plan.cluster_nodes)}/{len(plan.cluster_nodes)} nodes "
            f"online {_elapsed(t)}")  # fmt: skip


def start_power_switch(plan: LabPlan) -> None:
    with open(plan.state_dir / "power.log", "ab") as log:
        p = subprocess.Popen(
            [sys.executable, "-m", "congress_ha.lab.power", str(plan.state_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
            start_new_session=True,
        )  # fmt: skip
    # Recorded at once (the daemon rewrites it), so that a failed start is cleaned up.
    write_json(plan.state_dir / "power.pid", ProcRecord.of(p.pid).to_json())
    deadline = time.monotonic() + 10
    while True:
        try:
            request(plan.power_socket, {"op": "ping"}, timeout=2)
            return
        except PowerError:
            if p.poll() is not None or time.monotonic() > deadline:
                msg = f"power switch did not start: see {plan.state_dir}/power.log"
                raise LabError(msg) from None
            time.sleep(0.02)


def _power(plan: LabPlan, op: str, n: NodePlan, **kw) -> dict:
    try:
        return request(plan.power_socket, {"op": op, "node": n.name, **kw})
    except PowerError as e:
        raise LabError(f"{op} {n.name}: {e} (is the lab running? `congress-ha-lab "
                       f"--name {plan.name} status`)") from None  # fmt: skip


def crm_nodes(plan: LabPlan, via: NodePlan) -> dict[str, dict]:
    """crm_mon's view of the nodes from node `via`: name -> attributes."""
    r = node.run_in(plan, via, ["crm_mon", "-1", "--output-as=xml"], timeout=15)
    return parse_crm_nodes(r.stdout) if r.returncode == 0 else {}


def parse_crm_nodes(xml_text: str) -> dict[str, dict]:
    """The nodes of ``crm_mon --output-as=xml``: name -> attributes ({} if unreadable)."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return {}
    return {e.get("name"): dict(e.attrib) for e in root.findall("nodes/node")}


def wait_online(plan: LabPlan, members: tuple[NodePlan, ...], timeout: float,
                via: NodePlan | None = None) -> None:  # fmt: skip
    via = via or members[0]
    names = {n.name for n in members}
    deadline = time.monotonic() + timeout
    while True:
        seen = crm_nodes(plan, via)
        online = {k for k, v in seen.items() if v.get("online") == "true"}
        if names <= online:
            return
        if time.monotonic() > deadline:
            raise LabError(f"cluster not online after {timeout:.0f} s: online {sorted(online)}, "
                           f"expected {sorted(names)}")  # fmt: skip
        time.sleep(0.2)


# -- power -----------------------------------------------------------------------------
def start(plan: LabPlan, ref: str, say: Say, wait: bool = True) -> None:
    n = _node(plan, ref)
    t0 = time.monotonic()
    res = _power(plan, "on", n)
    if not res.get("changed"):
        say(f"node {n.name} is already on")
        return
    say(f"node {n.name} powered on (pid {res['pid']})")
    if wait:
        try:
            node.wait_ready(plan, n, res["boot_id"], BOOT_TIMEOUT)
        except RuntimeError as e:
            raise LabError(str(e)) from None
        say(f"node {n.name} up ({n.address}) {_elapsed(t0)}")


def kill(plan: LabPlan, ref: str, say: Say) -> None:
    n = _node(plan, ref)
    t0 = time.monotonic()
    res = _power(plan, "off", n)
    say(f"node {n.name} {'powered off' if res.get('changed') else 'was already off'} "
        f"{_elapsed(t0)}")  # fmt: skip


def stop(plan: LabPlan, ref: str, say: Say, timeout: float = 120) -> None:
    n = _node(plan, ref)
    t0 = time.monotonic()
    res = _power(plan, "stop", n, timeout=timeout)
    if not res.get("changed"):
        say(f"node {n.name} was already off")
    elif res.get("clean"):
        say(f"node {n.name} shut down cleanly {_elapsed(t0)}")
    else:
        say(f"node {n.name} did not shut down within {timeout:.0f} s: powered off")


def partition(plan: LabPlan, ref: str, say: Say, heal: bool = False) -> None:
    n = _node(plan, ref)
    try:
        netns.set_link(plan, n, up=heal)
    except netns.NetError as e:
        raise LabError(str(e)) from None
    say(f"node {n.name} {'healed: link up' if heal else 'partitioned: link down'}")


def _node(plan: LabPlan, ref: str) -> NodePlan:
    try:
        return plan.node(ref)
    except PlanError as e:
        raise NotFound(str(e)) from None


def exec_argv(plan: LabPlan, ref: str, argv: list[str]) -> list[str]:
    n = _node(plan, ref)
    pid = node.init_pid(plan, n)
    if pid is None:
        raise LabError(f"node {n.name} is off: `congress-ha-lab --name {plan.name} start "
                       f"{n.short}`")  # fmt: skip
    return node.nsenter_command(pid, argv or ["/bin/bash", "-l"])


# -- status ----------------------------------------------------------------------------
def status(plan: LabPlan) -> dict:
    sw = power_pid(plan.state_dir)
    nodes = []
    for n in plan.nodes:
        pid = node.init_pid(plan, n)
        link = netns.link_up(plan, n)
        nodes.append({
            "name": n.name, "role": n.role, "address": n.address,
            "power": "on" if pid else "off", "pid": pid,
            "link": {True: "up", False: "down (partitioned)", None: "missing"}[link],
            "phase": node.boot_status(plan, n).get("phase") if pid else None,
            "services": node.services(pid) if pid else [],
        })  # fmt: skip
    return {
        "name": plan.name,
        "state_dir": str(plan.state_dir),
        "netns": plan.lan_netns,
        "bridge": f"{plan.bridge} {plan.bridge_address}/{plan.prefixlen}",
        "power_switch": "running" if sw and sw.alive() else "not running",
        "ssh_key": str(plan.ssh_key),
        "transport_url": plan.transport_url,
        "transport_url_tls": plan.transport_url_tls,
        "tls_ca": str(plan.tls_dir / "ca.pem"),
        "database_connection": plan.database_url,
        "nodes": nodes,
    }


# -- down ------------------------------------------------------------------------------
def down(name: str, root: Path, say: Say) -> bool:
    """Remove lab `name` entirely, whether it is healthy, half-built or stale.

    Processes are stopped by recorded PID (checked against their start time); for a lab
    whose records are lost, the processes found in its own namespaces are killed.
    Returns False when there was nothing to remove.
    """
    t0 = time.monotonic()
    state_dir = root / name
    plan = load_plan(state_dir)
    spaces = netns.lab_netns(name)
    if plan is None and not state_dir.exists() and not spaces:
        return False
    sw = power_pid(state_dir)
    if sw and sw.alive() and plan is not None:
        try:
            request(plan.power_socket, {"op": "shutdown"}, timeout=30)
        except PowerError as e:
            say(f"power switch did not shut down cleanly ({e}): killing recorded PIDs")
    records: list[ProcRecord] = [sw] if sw else []
    if plan is not None:
        for n in plan.nodes:
            pids = node_pids(plan, n.short)
            records += [pids[k] for k in ("init", "holder") if k in pids]
    for rec in records:
        rec.kill(signal.SIGKILL)
    for rec in records:
        if not rec.wait_gone(10):
            raise LabError(f"process {rec.pid} survived SIGKILL; lab {name} not removed")
    # Stale leftovers without records: whatever still runs in the lab's own namespaces.
    for ns in netns.lab_netns(name):
        for pid in netns.netns_pids(ns):
            try:
                ProcRecord.of(pid).kill(signal.SIGKILL)
            except OSError:
                pass
    errors = netns.delete(netns.lab_netns(name))
    if errors:
        raise LabError("; ".join(errors))
    shutil.rmtree(state_dir, ignore_errors=True)
    if state_dir.exists():
        raise LabError(f"could not remove {state_dir}")
    say(f"down: processes, {len(spaces)} namespaces and {state_dir} removed {_elapsed(t0)}")
    return True
