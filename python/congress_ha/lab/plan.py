"""What a lab is made of: names, addresses and paths, computed without side effects.

Everything that carries the lab's name (namespaces, bridge, veths, state folder) is
derived here, so that `up`, `down` and the tests agree on it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

# The only range the lab may use (FACTS.md, Network): 192.0.2.0/24 is the uplink.
NETWORK = ipaddress.IPv4Network("203.0.113.0/24")
BRIDGE_HOST = 1  # the lab namespace's own address on the bridge (Ansible controller side)
INFRA_HOST = 10
FIRST_NODE_HOST = 11
MAX_NODES = 32

DEFAULT_NAME = "chlab"
DEFAULT_ROOT = "/var/tmp/congress-ha-lab"
ROOT_ENV = "CONGRESS_HA_LAB_ROOT"

# Interface names are at most 15 bytes: "<name>-infra" must fit, hence 9.
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,8}$")

LAB_USER = "congress"
LAB_VHOST = "congress"  # the cluster's own RabbitMQ vhost
# The password of the lab's bus user and database role is drawn for each lab
# (LabPlan.secret): a deployed lab shows where a password could leak, and one
# equal to its user name would be found everywhere that name is.
AMQP_PORT = 5672
AMQPS_PORT = 5671  # RabbitMQ's TLS listener, with a certificate of the lab's CA
PG_PORT = 5432

# The lab's private CA (made at `up`) and where the nodes find its files.
NODE_TLS_DIR = "/etc/congress-ha/tls"


class PlanError(ValueError):
    """A lab cannot be planned with these parameters (the message says why)."""


@dataclass(frozen=True)
class NodePlan:
    """One node of a lab: a set of namespaces with an address on the lab bridge."""

    name: str  # also its hostname and network namespace, e.g. chlab-n1
    short: str  # n1, n2, ... or infra
    role: str  # "cluster" or "infra"
    address: str
    nodeid: int  # corosync node id (0 for infra)

    @property
    def netns(self) -> str:
        return self.name

    @property
    def veth(self) -> str:
        # Bridge side of the node's link, in the lab namespace; the node side is eth0.
        return self.name


@dataclass(frozen=True)
class LabPlan:
    """A whole lab: its name, nodes, cluster options and state folder."""

    name: str
    nodes: tuple[NodePlan, ...]
    root: Path
    cluster: bool = True
    infra: bool = True
    token_ms: int = 1000
    crypto: bool = False
    fencing: bool = True
    secret: str = field(default="", compare=False, repr=False)  # bus and database password
    # The fence devices' password: the power switch checks it when an agent gives one.
    fence_secret: str = field(default="", compare=False, repr=False)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def lan_netns(self) -> str:
        return f"{self.name}-lan"

    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    @property
    def bridge_address(self) -> str:
        return str(NETWORK.network_address + BRIDGE_HOST)

    @property
    def prefixlen(self) -> int:
        return NETWORK.prefixlen

    @property
    def state_dir(self) -> Path:
        return self.root / self.name

    @property
    def power_socket(self) -> Path:
        return self.state_dir / "power.sock"

    @property
    def ssh_key(self) -> Path:
        return self.state_dir / "ssh" / "id_ed25519"

    def node_dir(self, node: NodePlan) -> Path:
        return self.state_dir / "nodes" / node.short

    @property
    def cluster_nodes(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.role == "cluster")

    @property
    def infra_node(self) -> NodePlan | None:
        for n in self.nodes:
            if n.role == "infra":
                return n
        return None

    def node(self, ref: str) -> NodePlan:
        """Find a node by full name (chlab-n1) or short name (n1, infra)."""
        for n in self.nodes:
            if ref in (n.name, n.short):
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise PlanError(f"lab {self.name} has no node {ref!r} (nodes: {known})")

    @property
    def transport_url(self) -> str | None:
        infra = self.infra_node
        if infra is None:
            return None
        return f"rabbit://{LAB_USER}:{self.secret}@{infra.address}:{AMQP_PORT}/{LAB_VHOST}"

    @property
    def transport_url_tls(self) -> str | None:
        """The bus over TLS: the infra's 5671, verified against the lab's CA."""
        infra = self.infra_node
        if infra is None:
            return None
        return f"rabbit://{LAB_USER}:{self.secret}@{infra.address}:{AMQPS_PORT}/{LAB_VHOST}"

    @property
    def tls_dir(self) -> Path:
        """The lab's CA (ca.pem, ca.key) and every node's certificate, on the host."""
        return self.state_dir / "tls"

    @property
    def database_url(self) -> str | None:
        infra = self.infra_node
        if infra is None:
            return None
        return (
            f"postgresql://{LAB_USER}:{self.secret}@{infra.address}:{PG_PORT}/{LAB_USER}"
        )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "root": str(self.root),
            "cluster": self.cluster,
            "infra": self.infra,
            "token_ms": self.token_ms,
            "crypto": self.crypto,
            "fencing": self.fencing,
            "secret": self.secret,
            "fence_secret": self.fence_secret,
            "nodes": [
                {
                    "name": n.name,
                    "short": n.short,
                    "role": n.role,
                    "address": n.address,
                    "nodeid": n.nodeid,
                }
                for n in self.nodes
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> LabPlan:
        return cls(
            name=data["name"],
            root=Path(data["root"]),
            cluster=data["cluster"],
            infra=data["infra"],
            token_ms=data["token_ms"],
            crypto=data["crypto"],
            fencing=data.get("fencing", True),
            secret=data.get("secret") or "congress",  # a lab made before secrets were drawn
            fence_secret=data.get("fence_secret", ""),
            nodes=tuple(NodePlan(**n) for n in data["nodes"]),
        )


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise PlanError(
            f"invalid lab name {name!r}: use 1 to 9 lowercase letters or digits, starting "
            "with a letter (it prefixes interface names, which are limited to 15 bytes)"
        )
    return name


def node_address(index: int) -> str:
    """Address of cluster node number `index` (1-based): 203.0.113.11, .12, ..."""
    if not 1 <= index <= MAX_NODES:
        raise PlanError(f"node index {index} out of range 1..{MAX_NODES}")
    return str(NETWORK.network_address + FIRST_NODE_HOST + index - 1)


def plan_lab(
    name: str = DEFAULT_NAME,
    nodes: int = 3,
    *,
    root: Path | None = None,
    cluster: bool = True,
    infra: bool = True,
    token_ms: int = 1000,
    crypto: bool = False,
    fencing: bool = True,
) -> LabPlan:
    check_name(name)
    if not 1 <= nodes <= MAX_NODES:
        raise PlanError(f"--nodes must be between 1 and {MAX_NODES}, got {nodes}")
    if not 100 <= token_ms <= 60000:
        raise PlanError(f"--token must be between 100 and 60000 ms, got {token_ms}")
    members: list[NodePlan] = []
    if infra:
        members.append(
            NodePlan(
                name=f"{name}-infra",
                short="infra",
                role="infra",
                address=str(NETWORK.network_address + INFRA_HOST),
                nodeid=0,
            )
        )
    for i in range(1, nodes + 1):
        members.append(
            NodePlan(f"{name}-n{i}", f"n{i}", "cluster", node_address(i), nodeid=i)
        )
    return LabPlan(
        name=name,
        nodes=tuple(members),
        root=root or default_root(),
        cluster=cluster,
        infra=infra,
        token_ms=token_ms,
        crypto=crypto,
        fencing=fencing,
        secret=secrets.token_hex(16),
        fence_secret=secrets.token_hex(16),
    )


def overlapping_routes(routes: list[dict], network: ipaddress.IPv4Network = NETWORK) -> list[str]:
    """Routes (from `ip -j route show table all`) that cover part of `network`.

    A default route does not count: it is how every unrouted range leaves the host, and
    the lab's range never reaches the root namespace.
    """
    hits = []
    for r in routes:
        dst = r.get("dst", "")
        if dst in ("", "default") or ":" in dst:
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.version == 4 and net.prefixlen > 0 and net.overlaps(network):
            dev = r.get("dev", "?")
            hits.append(f"{dst} dev {dev}")
    return hits


def hosts_file(plan: LabPlan) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{n.address}\t{n.name}" for n in plan.nodes]
    return "\n".join(lines) + "\n"
