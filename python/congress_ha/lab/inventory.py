"""The Ansible inventory of a lab (YAML)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from .node import SERVICE_USER
from .plan import LabPlan


def ssh_common_args(plan: LabPlan, python: str | None = None) -> str:
    """ssh options for the lab's namespaced sshds, usable from the root namespace.

    The ProxyCommand enters the lab's namespace; host keys are per lab and the same
    addresses are reused by every lab, so known_hosts is skipped and the ControlPath
    lives in the lab's folder (two labs must not share a master connection).
    """
    proxy = " ".join([
        "ip", "netns", "exec", plan.lan_netns, python or sys.executable,
        "-m", "congress_ha.lab.relay", "%h", "%p",
    ])  # fmt: skip
    opts = [
        f"-o ProxyCommand={shlex.quote(proxy)}",
        "-o StrictHostKeyChecking=no",
        "-o UserKnownHostsFile=/dev/null",
        "-o LogLevel=ERROR",
        f"-o ControlPath={plan.state_dir}/ssh/cm-%C",
    ]
    return " ".join(opts)


def inventory(plan: LabPlan) -> dict:
    common = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(plan.ssh_key),
        "ansible_ssh_common_args": ssh_common_args(plan),
        "ansible_python_interpreter": "/usr/bin/python3",
        "congress_ha_lab": plan.name,
        # ansible/inventories/lab gives it to every fence device as its password.
        "congress_ha_lab_fence_password": plan.fence_secret,
        # The agents' user: the service's own, unless it cannot run this venv.
        "congress_ha_lab_service_user": service_user(),
    }
    if plan.transport_url:
        common["congress_ha_transport_url"] = plan.transport_url
        common["congress_ha_transport_url_tls"] = plan.transport_url_tls
        common["congress_ha_database_connection"] = plan.database_url
    children: dict = {
        "cluster": {
            "hosts": {
                n.name: {"ansible_host": n.address, "corosync_nodeid": n.nodeid}
                for n in plan.cluster_nodes
            }
        }
    }
    infra = plan.infra_node
    if infra:
        children["infra"] = {"hosts": {infra.name: {"ansible_host": infra.address}}}
    return {"all": {"vars": common, "children": children}}


def service_user(venv: Path | None = None) -> str:
    """The user the lab's servers run as: the service's own (SERVICE_USER, made by
    `up`) when it can run the host's venv that the nodes use; root when it cannot,
    e.g. a checkout or an interpreter under root's home (0700). A real install puts
    the venv where every user reads it (/opt/congress-ha/venv)."""
    python = (venv or Path(sys.prefix)) / "bin" / "python"
    try:
        r = subprocess.run(["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}",
                            # as the agents start it: through env (a real exec)
                            "--init-groups", "--", "env", "HOME=/", str(python), "-c",
                            "import congress_ha.server"],
                           capture_output=True, timeout=60, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return "root"
    return SERVICE_USER if r.returncode == 0 else "root"


def render(plan: LabPlan) -> str:
    return yaml.safe_dump(inventory(plan), sort_keys=False, default_flow_style=False, width=1000)
