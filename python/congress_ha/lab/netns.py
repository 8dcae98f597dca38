"""The lab's network: a namespace holding the bridge, one namespace and veth per node.

Nothing is added to the root namespace: the bridge and the bridge side of every veth
live in `<lab>-lan`; each node sees only its `eth0` (on 203.0.113.0/24, no default
route) and `lo`. A partition takes the bridge side of a node's veth down.
"""

from __future__ import annotations

import json
import subprocess

from .plan import NETWORK, LabPlan, NodePlan, overlapping_routes


class NetError(RuntimeError):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {r.stderr.strip() or 'exit ' + str(r.returncode)}")
    return r


def routed_conflicts() -> list[str]:
    """Routes and addresses of the root namespace that touch the lab range."""
    routes = json.loads(ip("-j", "route", "show", "table", "all").stdout or "[]")
    hits = overlapping_routes(routes)
    addrs = json.loads(ip("-j", "-4", "addr", "show").stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            entry = {"dst": f"{a['local']}/{a['prefixlen']}", "dev": link.get("ifname")}
            hits += [f"address {h}" for h in overlapping_routes([entry], NETWORK)]
    return hits


def list_netns() -> list[str]:
    out = ip("-j", "netns", "list", check=False).stdout.strip()
    if not out:
        return []
    return [e["name"] for e in json.loads(out)]


def lab_netns(name: str) -> list[str]:
    """Every namespace that belongs to lab `name` (names cannot contain '-', so the
    prefix `<name>-` is unambiguous)."""
    return [n for n in list_netns() if n.startswith(f"{name}-")]


def create_lan(plan: LabPlan) -> None:
    ns = plan.lan_netns
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "link", "add", plan.bridge, "type", "bridge", "stp_state", "0",
       "forward_delay", "0")  # fmt: skip
    ip("-n", ns, "addr", "add", f"{plan.bridge_address}/{plan.prefixlen}", "dev", plan.bridge)
    ip("-n", ns, "link", "set", plan.bridge, "up")


def create_node_link(plan: LabPlan, node: NodePlan) -> None:
    ip("netns", "add", node.netns)
    ip("-n", plan.lan_netns, "link", "add", node.veth, "type", "veth",
       "peer", "name", "eth0", "netns", node.netns)  # fmt: skip
    ip("-n", plan.lan_netns, "link", "set", node.veth, "master", plan.bridge, "up")
    ip("-n", node.netns, "link", "set", "lo", "up")
    ip("-n", node.netns, "addr", "add", f"{node.address}/{plan.prefixlen}", "dev", "eth0")
    ip("-n", node.netns, "link", "set", "eth0", "up")


def set_link(plan: LabPlan, node: NodePlan, up: bool) -> None:
    ip("-n", plan.lan_netns, "link", "set", node.veth, "up" if up else "down")


def link_up(plan: LabPlan, node: NodePlan) -> bool | None:
    r = ip("-j", "-n", plan.lan_netns, "link", "show", node.veth, check=False)
    if r.returncode != 0:
        return None
    flags = json.loads(r.stdout)[0].get("flags", [])
    return "UP" in flags


def delete(names: list[str]) -> list[str]:
    """Delete these namespaces; return the errors (an absent one is not an error)."""
    errors = []
    existing = set(list_netns())
    for n in names:
        if n in existing:
            r = ip("netns", "delete", n, check=False)
            if r.returncode != 0:
                errors.append(f"netns {n}: {r.stderr.strip()}")
    return errors


def netns_pids(name: str) -> list[int]:
    r = ip("netns", "pids", name, check=False)
    return [int(x) for x in r.stdout.split()] if r.returncode == 0 else []
