"""The cluster model: cluster.yaml, loaded and checked into frozen dataclasses.

``load_cluster`` reads the file, checks every key and every cross-key rule, and
either returns a ``Cluster`` or raises one ``ClusterConfigError`` that lists
every mistake with its place in the file (``cluster.yaml: nodes[1].address:
...``).  The service's option defaults come from ``congress_ha.config`` (one
source for each fact); nothing here imports the runtime.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from congress_ha import config as service_config
from congress_ha import timings
from congress_ha.cluster.checker import (
    Checker,
    ClusterConfigError,
    Duration,
    kind,
    parse_duration,
    read_yaml,
)

ROLES = ("api-pe", "datasources")
MONITOR_DEPTHS = (0, 10, 20)
DEFAULT_FENCE_MONITOR = "60s"

# Node names become Pacemaker unames and parts of XML ids (fence-NAME).
_NODE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$")
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_FENCE_AGENT = re.compile(r"^fence_[A-Za-z0-9_]+$")
_NIC = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    roles: tuple[str, ...]
    nodeid: int

    @property
    def api_pe(self) -> bool:
        return "api-pe" in self.roles

    @property
    def datasources(self) -> bool:
        return "datasources" in self.roles


@dataclass(frozen=True)
class Vip:
    address: str
    cidr_netmask: int
    nic: str | None


@dataclass(frozen=True)
class Haproxy:
    enabled: bool
    bind_port: int
    config_file: str
    binary: str
    check_interval: Duration
    rise: int
    fall: int
    maxconn: int
    timeout_connect: Duration
    timeout_client: Duration
    timeout_server: Duration


@dataclass(frozen=True)
class Corosync:
    token: int
    consensus: int | None
    crypto: bool
    cipher: str
    hash: str
    transport: str
    # Seconds between knet's path MTU scans; None: corosync's own (30 s).
    knet_pmtud_interval: int | None


@dataclass(frozen=True)
class Fencing:
    enabled: bool
    agent: str | None
    params: dict[str, str]
    nodes: dict[str, dict[str, str]]
    monitor_interval: Duration

    def _merged(self, node: str) -> dict[str, str]:
        merged = dict(self.params)
        merged.update(self.nodes.get(node, {}))
        return merged

    def device_params(self, node: str) -> dict[str, str]:
        """The fence device's parameters for ``node`` as the CIB holds them: shared,
        then the node's own; a password replaced by a script that reads its file."""
        merged = self._merged(node)
        if any(merged.pop(k, None) is not None for k in FENCE_SECRET_PARAMS):
            merged["password_script"] = f"/bin/cat {fence_secret_file(node)}"
        merged["pcmk_host_list"] = node
        return merged

    def device_secret(self, node: str) -> str | None:
        """The password of ``node``'s fence device, for its root-only file; None if none."""
        merged = self._merged(node)
        return next((merged[k] for k in FENCE_SECRET_PARAMS if k in merged), None)


# A fence password never goes into the CIB, which every node keeps and shows
# (`cibadmin -Q`, crm_report, pcs config). Each fence agent of fence-agents
# runs `password_script` to get it; ours reads a root-only file on every node.
FENCE_SECRET_PARAMS = ("password", "passwd")
FENCE_SECRET_DIR = "/etc/congress-ha/fence"


def fence_secret_file(node: str) -> str:
    return f"{FENCE_SECRET_DIR}/fence-{node}.password"


DEFAULT_TOKEN_FILE = "/etc/congress-ha/api-token"
DEFAULT_BUS_KEY_FILE = "/etc/congress-ha/bus.key"
# The agents' user parameter: the service's own system user, never root by
# default (it reads its config and secrets through its group, 0640).
DEFAULT_SERVICE_USER = "congress-ha"
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Service:
    config_file: str
    api_port: int
    auth_strategy: str
    token_file: str | None
    # Every [ha] option of congress_ha.config, in its declared order.
    ha: dict[str, Any]
    # The agents' binary/ctl parameters: absolute paths when the service lives
    # in a virtualenv that Pacemaker's PATH does not contain; None: by name.
    binary: str | None = None
    ctl: str | None = None
    # [keystone_authtoken] of auth_strategy keystone, as keystonemiddleware reads it.
    keystone_authtoken: dict[str, str] | None = None
    # [bus] key_file: the key that signs every bus message, the same on every node.
    bus_key_file: str = DEFAULT_BUS_KEY_FILE
    # [drivers] file_allowed_dirs: the only folders the file driver may use.
    file_allowed_dirs: tuple[str, ...] = ("/var/lib/congress-ha/files",)
    # The agents' user parameter: who the server runs as.
    user: str = DEFAULT_SERVICE_USER

    @property
    def heartbeat_interval(self) -> float:
        return self.ha["heartbeat_interval"]

    @property
    def peer_timeout(self) -> float:
        return self.ha["peer_timeout"]


@dataclass(frozen=True)
class Tls:
    """Which links use TLS and the files they use (paths on the nodes)."""

    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    # Per node: its own cert_file/key_file where they differ from the shared ones.
    nodes: dict[str, dict[str, str]]
    api: bool
    bus: bool
    database: bool

    def node_files(self, node: str) -> dict[str, str | None]:
        """The API's certificate and key on ``node``."""
        own = self.nodes.get(node, {})
        return {"cert_file": own.get("cert_file", self.cert_file),
                "key_file": own.get("key_file", self.key_file)}


@dataclass(frozen=True)
class Monitor:
    interval: Duration
    timeout: Duration
    depth: int


@dataclass(frozen=True)
class Resources:
    migration_threshold: int
    failure_timeout: Duration
    default_stickiness: int
    datasources_stickiness: int
    preferred_score: int
    cluster_recheck_interval: Duration
    start_timeout: Duration
    stop_timeout: Duration
    api_pe_monitor: Monitor
    datasources_monitor: Monitor
    vip_monitor: Monitor
    haproxy_monitor: Monitor


@dataclass(frozen=True)
class Cluster:
    """A checked cluster.yaml, every default filled in."""

    source: str
    name: str
    nodes: tuple[Node, ...]
    datasources_preferred_node: str
    transport_url: str
    database_connection: str
    vip: Vip | None
    haproxy: Haproxy
    corosync: Corosync
    fencing: Fencing
    service: Service
    resources: Resources
    # None: no tls section, every link in the clear (render says so).
    tls: Tls | None = None

    @property
    def api_pe_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.api_pe)

    @property
    def datasources_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.datasources)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


# --------------------------------------------------------------------------
# Sections

_TOP_KEYS = ("cluster_name", "nodes", "datasources_preferred_node", "transport_url",
             "database_connection", "vip", "haproxy", "corosync", "fencing", "service",
             "resources", "tls")
_NODE_KEYS = ("name", "address", "roles", "nodeid")


def _nodes(c: Checker, raw: Any) -> list[Node]:
    if raw is None:
        c.error("nodes", "missing; list the cluster's nodes (name, address, roles)")
        return []
    if not isinstance(raw, list) or not raw:
        c.error("nodes", f"must be a non-empty list of nodes; got {kind(raw)}")
        return []
    nodes: list[Node] = []
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    nodeids: dict[int, int] = {}
    for i, item in enumerate(raw):
        path = f"nodes[{i}]"
        errors_before = len(c.lines)
        entry = c.mapping(item, path, _NODE_KEYS)
        if entry is None:
            continue
        name = address = None
        if entry.get("name") is None:
            c.error(f"{path}.name", "missing; every node needs a name (its host name, "
                                    "as Pacemaker and corosync will call it)")
        else:
            name = c.string(entry["name"], f"{path}.name", _NODE_NAME,
                             "a host name: letters, digits, '-' and '.', at most 63")
        if entry.get("address") is None:
            c.error(f"{path}.address", "missing; every node needs an address")
        else:
            address = c.address(entry["address"], f"{path}.address")
        roles = _roles(c, entry.get("roles"), f"{path}.roles")
        nodeid = i + 1
        if "nodeid" in entry:
            given = c.integer(entry["nodeid"], f"{path}.nodeid", 1, 2**31 - 1)
            nodeid = given if given is not None else nodeid
        if name is not None:
            if name in names:
                c.error(f"{path}.name", f"{name!r} is also the name of nodes[{names[name]}]; "
                                        "node names must be unique")
            else:
                names[name] = i
        if address is not None:
            if address in addresses:
                c.error(f"{path}.address", f"{address} is also the address of "
                                           f"nodes[{addresses[address]}]; addresses must "
                                           "be unique")
            else:
                addresses[address] = i
        if nodeid in nodeids:
            c.error(f"{path}.nodeid", f"{nodeid} is also the nodeid of nodes[{nodeids[nodeid]}]"
                                      "; give every node its own nodeid (or none at all)")
        else:
            nodeids[nodeid] = i
        if len(c.lines) == errors_before:
            assert name is not None and address is not None and roles is not None
            nodes.append(Node(name=name, address=address, roles=roles, nodeid=nodeid))
    return nodes


def _roles(c: Checker, raw: Any, path: str) -> tuple[str, ...] | None:
    if raw is None:
        c.error(path, f"missing; give each node one or both roles: {', '.join(ROLES)}")
        return None
    if not isinstance(raw, list) or not raw:
        c.error(path, f"must be a non-empty list of roles ({', '.join(ROLES)}); "
                      f"got {kind(raw)}")
        return None
    roles: list[str] = []
    ok = True
    for j, role in enumerate(raw):
        if role not in ROLES:
            c.error(f"{path}[{j}]", f"{role!r} is not a role; roles are {', '.join(ROLES)}")
            ok = False
        elif role in roles:
            c.error(f"{path}[{j}]", f"{role!r} is listed twice")
            ok = False
        else:
            roles.append(role)
    return tuple(r for r in ROLES if r in roles) if ok else None


def _vip(c: Checker, raw: Any, nodes: list[Node]) -> Vip | None:
    if raw is None:
        return None
    entry = c.mapping(raw, "vip", ("address", "cidr_netmask", "nic"), ("address",))
    if entry is None:
        return None
    address = c.address(entry["address"], "vip.address") if "address" in entry else None
    if address is None:
        return None
    high = 32 if ipaddress.ip_address(address).version == 4 else 128
    netmask = c.integer(entry.get("cidr_netmask", 24 if high == 32 else 64),
                        "vip.cidr_netmask", 1, high)
    nic = None
    if entry.get("nic") is not None:
        nic = c.string(entry["nic"], "vip.nic", _NIC, "an interface name such as eth0")
    if any(n.address == address for n in nodes):
        c.error("vip.address", f"{address} is a node's own address; the VIP must be a "
                               "free address that moves between nodes")
    if netmask is not None and nic is None:
        network = ipaddress.ip_network(f"{address}/{netmask}", strict=False)
        if nodes and not any(ipaddress.ip_address(n.address) in network for n in nodes):
            c.error("vip.nic", f"missing, and no node address is in {network}: IPaddr2 "
                               "finds the interface only when the VIP shares a subnet "
                               "with the node; set vip.nic")
    if netmask is None:
        return None
    return Vip(address=address, cidr_netmask=netmask, nic=nic)


_HAPROXY_DEFAULTS: dict[str, Any] = {
    "enabled": True, "bind_port": 1789, "config_file": "/etc/haproxy/haproxy.cfg",
    "binary": "/usr/sbin/haproxy", "check_interval": "2s", "rise": 2, "fall": 2,
    "maxconn": 2000, "timeout_connect": "5s", "timeout_client": "60s",
    "timeout_server": "60s",
}


def _haproxy(c: Checker, raw: Any, has_vip: bool, api_port: int | None) -> Haproxy:
    values = dict(_HAPROXY_DEFAULTS)
    if raw is None:
        values["enabled"] = False
    else:
        entry = c.mapping(raw, "haproxy", tuple(_HAPROXY_DEFAULTS))
        if entry is not None:
            values.update(entry)
    enabled = c.boolean(values["enabled"], "haproxy.enabled")
    port = c.integer(values["bind_port"], "haproxy.bind_port", 1, 65535)
    if enabled and not has_vip and port is not None and port == api_port:
        c.error("haproxy.bind_port", f"{port} is also service.api_port; without a vip "
                                     "haproxy listens on every address, so choose "
                                     "another port (or add a vip)")
    return Haproxy(
        enabled=bool(enabled),
        bind_port=port or 0,
        config_file=c.string(values["config_file"], "haproxy.config_file") or "",
        binary=c.string(values["binary"], "haproxy.binary") or "",
        check_interval=_dur(c, values["check_interval"], "haproxy.check_interval", 100),
        rise=c.integer(values["rise"], "haproxy.rise", 1, 100) or 0,
        fall=c.integer(values["fall"], "haproxy.fall", 1, 100) or 0,
        maxconn=c.integer(values["maxconn"], "haproxy.maxconn", 1) or 0,
        timeout_connect=_dur(c, values["timeout_connect"], "haproxy.timeout_connect", 1),
        timeout_client=_dur(c, values["timeout_client"], "haproxy.timeout_client", 1),
        timeout_server=_dur(c, values["timeout_server"], "haproxy.timeout_server", 1),
    )


_CIPHERS = ("aes256", "aes192", "aes128")
_HASHES = ("sha256", "sha384", "sha512", "sha1", "md5")


def _corosync(c: Checker, raw: Any) -> Corosync:
    entry = c.mapping(raw if raw is not None else {}, "corosync",
                      ("token", "consensus", "crypto", "cipher", "hash", "transport",
                       "knet_pmtud_interval"))
    entry = entry or {}
    token = c.integer(entry.get("token", 3000), "corosync.token", 100, 600_000, " ms")
    consensus = None
    if entry.get("consensus") is not None:
        consensus = c.integer(entry["consensus"], "corosync.consensus", 1, None, " ms")
        if consensus is not None and token is not None and consensus * 5 < token * 6:
            c.error("corosync.consensus", f"{consensus} ms is below 1.2 x token "
                                          f"({token * 6 // 5} ms), the minimum that "
                                          "corosync.conf(5) allows; raise it or leave it "
                                          "out (corosync then uses 1.2 x token)")
            consensus = None
    crypto = c.boolean(entry.get("crypto", True), "corosync.crypto")
    cipher = c.choice(entry.get("cipher", "aes256"), "corosync.cipher", _CIPHERS)
    digest = c.choice(entry.get("hash", "sha256"), "corosync.hash", _HASHES)
    transport = c.choice(entry.get("transport", "knet"), "corosync.transport", ("knet",))
    pmtud = None
    if entry.get("knet_pmtud_interval") is not None:
        # libknet takes 1 s to a day (knet_handle_pmtud_setfreq).
        pmtud = c.integer(entry["knet_pmtud_interval"], "corosync.knet_pmtud_interval",
                          1, 86_400, " s")
    return Corosync(token=token or 3000, consensus=consensus,
                    crypto=True if crypto is None else crypto,
                    cipher=cipher or "aes256", hash=digest or "sha256",
                    transport=transport or "knet", knet_pmtud_interval=pmtud)


def _fencing(c: Checker, raw: Any, nodes: list[Node] | None) -> Fencing:
    """``nodes`` is None when some node is wrong: then node names are not checked here."""
    entry = c.mapping(raw if raw is not None else {}, "fencing",
                      ("enabled", "agent", "params", "nodes", "monitor_interval")) or {}
    enabled = c.boolean(entry.get("enabled", True), "fencing.enabled")
    agent = None
    if entry.get("agent") is None:
        if enabled:
            c.error("fencing.agent", "missing; fencing is on by default: name the fence "
                                     "agent (e.g. fence_ipmilan) or set fencing.enabled: "
                                     "false (never in production)")
    else:
        agent = c.string(entry["agent"], "fencing.agent", _FENCE_AGENT,
                         "a fence agent's name, e.g. fence_ipmilan (installed as "
                         "/usr/sbin/fence_*)")
    params = c.params(entry.get("params"), "fencing.params")
    per_node: dict[str, dict[str, str]] = {}
    raw_nodes = entry.get("nodes")
    if raw_nodes is not None:
        if not isinstance(raw_nodes, dict):
            c.error("fencing.nodes", f"must be a mapping of node name to that node's "
                                     f"fence parameters; got {kind(raw_nodes)}")
        else:
            for name, node_params in raw_nodes.items():
                if nodes is not None and name not in {n.name for n in nodes}:
                    c.error(f"fencing.nodes.{name}", "is not the name of a node in nodes")
                    continue
                per_node[name] = c.params(node_params, f"fencing.nodes.{name}")
    _fence_secrets(c, params, per_node)
    interval = _dur(c, entry.get("monitor_interval", DEFAULT_FENCE_MONITOR),
                    "fencing.monitor_interval", 1000)
    return Fencing(enabled=bool(enabled), agent=agent, params=params, nodes=per_node,
                   monitor_interval=interval)


def _fence_secrets(c: Checker, shared: dict[str, str],
                   per_node: dict[str, dict[str, str]]) -> None:
    """One password per device: the CIB gets a password_script in its place."""
    for where, params in [("fencing.params", shared)] + [
            (f"fencing.nodes.{name}", own) for name, own in per_node.items()]:
        if all(k in params for k in FENCE_SECRET_PARAMS):
            c.error(f"{where}.passwd", "and password are the same parameter; give password")
        for script in ("password_script", "passwd_script"):
            if script in params and any(k in params for k in FENCE_SECRET_PARAMS):
                c.error(f"{where}.{script}", "and a password are both given: give the "
                                             "password alone (render puts it in a "
                                             "root-only file that its own "
                                             "password_script reads) or your script alone")


_TLS_KEYS = ("ca_file", "cert_file", "key_file", "nodes", "api", "bus", "database")
# RabbitMQ's TLS port (its plain one, 5672, is oslo.messaging's default).
AMQPS_PORT = 5671


def _abs_path(c: Checker, value: Any, path: str) -> str | None:
    text = c.string(value, path)
    if text is not None and not text.startswith("/"):
        c.error(path, f"{text!r} must be an absolute path on the nodes")
        return None
    return text


def _tls(c: Checker, raw: Any, nodes: list[Node] | None, transport_url: str,
         database: str) -> Tls | None:
    """``nodes`` is None when some node is wrong: then node names are not checked here."""
    if raw is None:
        return None
    entry = c.mapping(raw, "tls", _TLS_KEYS)
    if entry is None:
        return None
    files = {k: _abs_path(c, entry[k], f"tls.{k}") if entry.get(k) is not None else None
             for k in ("ca_file", "cert_file", "key_file")}
    links = {}
    for link in ("api", "bus", "database"):
        value = c.boolean(entry.get(link, True), f"tls.{link}")
        links[link] = True if value is None else value
    per_node: dict[str, dict[str, str]] = {}
    raw_nodes = entry.get("nodes")
    if raw_nodes is not None and not isinstance(raw_nodes, dict):
        c.error("tls.nodes", f"must be a mapping of node name to {{cert_file, key_file}}; "
                             f"got {kind(raw_nodes)}")
    elif raw_nodes:
        for name, own in raw_nodes.items():
            where = f"tls.nodes.{name}"
            if nodes is not None and name not in {n.name for n in nodes}:
                c.error(where, "is not the name of a node in nodes")
                continue
            given = c.mapping(own, where, ("cert_file", "key_file"))
            if given:
                per_node[name] = {k: v for k, v in ((k, _abs_path(c, v, f"{where}.{k}"))
                                                    for k, v in given.items()) if v}
    tls = Tls(ca_file=files["ca_file"], cert_file=files["cert_file"],
              key_file=files["key_file"], nodes=per_node, **links)
    if tls.api and nodes is not None:
        for key in ("cert_file", "key_file"):
            lacking = [n.name for n in nodes if n.api_pe and not tls.node_files(n.name)[key]]
            if lacking:
                c.error(f"tls.{key}", f"missing for {', '.join(lacking)}: tls.api is on, so "
                                      "every api-pe node needs the API's certificate and "
                                      f"key; give tls.{key} (or tls.nodes.NODE.{key}), or "
                                      "set tls.api: false")
    needs = [link for link in ("bus", "database") if links[link]]
    if needs and not tls.ca_file:
        c.error("tls.ca_file", f"missing: {' and '.join(f'tls.{n}' for n in needs)} "
                               f"{'is' if len(needs) == 1 else 'are'} on, and the nodes "
                               "verify the servers' certificates against this CA; give it, "
                               f"or set {' and '.join(f'tls.{n}: false' for n in needs)}")
    if links["bus"] and transport_url:
        _check_bus_url(c, transport_url)
    if links["database"] and database:
        _check_database_url(c, database)
    return tls


def _url_parts(url: str) -> urllib.parse.SplitResult | None:
    try:
        return urllib.parse.urlsplit(url)
    except ValueError:
        return None


def _check_bus_url(c: Checker, url: str) -> None:
    parts = _url_parts(url)
    if parts is None or not parts.scheme.startswith("rabbit"):
        c.error("tls.bus", "is on, but transport_url is not rabbit://; TLS is rendered for "
                           "RabbitMQ only")
        return
    for host in parts.netloc.rsplit("@", 1)[-1].split(","):
        port = host.rsplit(":", 1)[1] if ":" in host.rsplit("]", 1)[-1] else ""
        if port != str(AMQPS_PORT):
            c.error("transport_url", f"tls.bus is on, but {host or 'a host'} is not on "
                                     f"RabbitMQ's TLS port: write {AMQPS_PORT} "
                                     "explicitly (5672, the default, is the plain one)")
            return


def _check_database_url(c: Checker, url: str) -> None:
    parts = _url_parts(url)
    scheme = parts.scheme.split("+")[0] if parts else ""
    if scheme not in ("postgresql", "mysql", "mariadb"):
        c.error("tls.database", f"is on, but database_connection is {scheme or 'not a'}:// "
                                "(TLS is rendered for PostgreSQL and MariaDB); set "
                                "tls.database: false")
        return
    assert parts is not None
    given = {k for k, _ in urllib.parse.parse_qsl(parts.query)}
    ours = {"sslmode", "sslrootcert"} if scheme == "postgresql" else {"ssl_ca",
                                                                     "ssl_check_hostname"}
    clash = sorted(given & ours)
    if clash:
        c.error("database_connection", f"sets {', '.join(clash)} while tls.database is on, "
                                       "which renders them (verify-full against "
                                       "tls.ca_file); remove them from the URL")


def database_url(database: str, tls: Tls | None) -> str:
    """The URL the service uses: with tls.database on, the driver verifies the server's
    certificate against tls.ca_file and its name against the URL's host."""
    if tls is None or not tls.database or not tls.ca_file:
        return database
    parts = urllib.parse.urlsplit(database)
    if parts.scheme.split("+")[0] == "postgresql":
        extra = [("sslmode", "verify-full"), ("sslrootcert", tls.ca_file)]
    else:  # PyMySQL through SQLAlchemy: ssl={"ca": ..., "check_hostname": True}
        extra = [("ssl_ca", tls.ca_file), ("ssl_check_hostname", "true")]
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + extra
    return urllib.parse.urlunsplit(parts._replace(
        query=urllib.parse.urlencode(query, safe="/")))


def _service(c: Checker, raw: Any) -> Service:
    ha_opts = [o for o in service_config.OPTIONS if o.group == "ha"]
    api = {o.name: o for o in service_config.OPTIONS if o.group == "api"}
    known = ("config_file", "api_port", "auth_strategy", "token_file", "binary",
             "ctl", "keystone_authtoken", "bus_key_file", "file_allowed_dirs", "user") + tuple(
                 o.name for o in ha_opts)
    entry = c.mapping(raw if raw is not None else {}, "service", known) or {}
    config_file = c.string(entry.get("config_file", service_config.DEFAULT_CONFIG_FILE),
                           "service.config_file") or service_config.DEFAULT_CONFIG_FILE
    port = c.integer(entry.get("api_port", api["bind_port"].default), "service.api_port",
                     1, 65535)
    # A cluster's API listens on node addresses: never without authentication
    # (the server refuses noauth off loopback; say it here, before deploying).
    if entry.get("auth_strategy") == "noauth":
        c.error("service.auth_strategy", "noauth would leave the API open on every node "
                                         "address; use token (the default) or keystone")
        strategy = None
    else:
        strategy = c.choice(entry.get("auth_strategy", "token"), "service.auth_strategy",
                            tuple(ch for ch in api["auth_strategy"].choices
                                  if ch != "noauth"))
    token_file = None
    if strategy == "token":
        token_file = c.string(entry.get("token_file", DEFAULT_TOKEN_FILE),
                              "service.token_file")
        if token_file is not None and not token_file.startswith("/"):
            c.error("service.token_file", f"{token_file!r} must be an absolute path")
    keystone = None
    if strategy == "keystone":
        raw_ks = entry.get("keystone_authtoken")
        keystone = dict(raw_ks) if isinstance(raw_ks, dict) else {}
        if raw_ks is not None and not isinstance(raw_ks, dict):
            c.error("service.keystone_authtoken", "must be a mapping of keystonemiddleware "
                                                  "options")
        missing = [k for k in ("www_authenticate_uri", "auth_type") if k not in keystone]
        if missing:
            c.error("service.keystone_authtoken", f"{' and '.join(missing)} missing; "
                    "auth_strategy keystone needs keystonemiddleware's [keystone_authtoken] "
                    "options (www_authenticate_uri, auth_type and its credentials)")
        for key, value in list(keystone.items()):
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", str(key)) or isinstance(value, dict | list):
                c.error(f"service.keystone_authtoken.{key}", "an option name with a plain "
                                                             "value, as in an INI file")
                keystone.pop(key)
            elif "\n" in str(value):
                c.error(f"service.keystone_authtoken.{key}", "a value on one line")
                keystone.pop(key)
        keystone = {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in keystone.items()}
    ha: dict[str, Any] = {}
    for opt in ha_opts:
        path = f"service.{opt.name}"
        value = entry.get(opt.name, opt.default)
        checked: Any = None
        if opt.kind == "float":
            checked = c.number(value, path, opt.minimum or 0.0)
        elif opt.kind == "int":
            checked = c.integer(value, path, int(opt.minimum or 0))
        elif opt.kind == "bool":
            checked = c.boolean(value, path)
        else:
            checked = c.string(value, path)
        ha[opt.name] = opt.default if checked is None else checked
    hb, pt, grace = (ha.get(k) for k in ("heartbeat_interval", "peer_timeout",
                                         "shadow_grace"))
    if all(isinstance(v, float) for v in (hb, pt, grace)):
        # The same rules the server applies when it reads its config.
        for option, why in timings.relation_errors(heartbeat_interval=hb, peer_timeout=pt,
                                                   shadow_grace=grace):
            c.error(f"service.{option}", why)
    bus_key_file = c.string(entry.get("bus_key_file", DEFAULT_BUS_KEY_FILE),
                            "service.bus_key_file") or DEFAULT_BUS_KEY_FILE
    if not bus_key_file.startswith("/"):
        c.error("service.bus_key_file", f"{bus_key_file!r} must be an absolute path")
    file_dirs = _file_allowed_dirs(c, entry.get("file_allowed_dirs"))
    user = c.string(entry.get("user", DEFAULT_SERVICE_USER), "service.user", _USER_NAME,
                    "a system user's name, e.g. congress-ha (the playbook creates it)")
    paths = {}
    for key in ("binary", "ctl"):
        if entry.get(key) is not None:
            value = c.string(entry[key], f"service.{key}")
            if value and not value.startswith("/"):
                c.error(f"service.{key}", f"{value!r} must be an absolute path (or leave "
                                          "it out to find the command in PATH)")
            paths[key] = value
    return Service(config_file=config_file, api_port=port or 1789,
                   auth_strategy=strategy or "token", token_file=token_file, ha=ha,
                   binary=paths.get("binary"), ctl=paths.get("ctl"),
                   keystone_authtoken=keystone, bus_key_file=bus_key_file,
                   file_allowed_dirs=file_dirs, user=user or DEFAULT_SERVICE_USER)


def _file_allowed_dirs(c: Checker, raw: Any) -> tuple[str, ...]:
    """service.file_allowed_dirs: a list of folders (or one string, comma separated),
    checked as the server checks [drivers] file_allowed_dirs."""
    opt = next(o for o in service_config.OPTIONS if o.name == "file_allowed_dirs")
    if raw is None:
        return tuple(opt.default)
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, str) and "\n" not in i for i in items) or (
            isinstance(raw, list) and any("," in i for i in items)):
        c.error("service.file_allowed_dirs", "a list of absolute folder paths, e.g. "
                                             f"[{opt.default[0]}]")
        return tuple(opt.default)
    try:
        return service_config.parse_dirs(opt, ",".join(items), "service.file_allowed_dirs")
    except service_config.ConfigError as exc:
        c.error("service.file_allowed_dirs", str(exc).split(": ", 1)[-1])
        return tuple(opt.default)


def _op(name: str) -> str:
    """A Pacemaker operation's default from the timings table, as a duration."""
    return f"{timings.OPERATIONS[name].seconds:g}s"


_MONITOR_DEFAULTS = {
    "api_pe": {"interval": _op("monitor_interval_10"), "timeout": _op("monitor_timeout_10"),
               "depth": 10},
    "datasources": {"interval": _op("monitor_interval_10"),
                    "timeout": _op("monitor_timeout_10"), "depth": 10},
    "vip": {"interval": "10s", "timeout": "20s", "depth": 0},
    "haproxy": {"interval": "10s", "timeout": "20s", "depth": 0},
}
_RESOURCE_DEFAULTS: dict[str, Any] = {
    "migration_threshold": 3, "failure_timeout": "60s", "default_stickiness": 1,
    "datasources_stickiness": 200,
    "preferred_score": 100, "cluster_recheck_interval": "1min",
    "start_timeout": _op("start_timeout"), "stop_timeout": _op("stop_timeout"), "monitor": {},
}


def _monitor(c: Checker, raw: Any, name: str) -> Monitor:
    path = f"resources.monitor.{name}"
    values = dict(_MONITOR_DEFAULTS[name])
    entry = c.mapping(raw if raw is not None else {}, path, ("interval", "timeout", "depth"))
    values.update(entry or {})
    interval = _dur(c, values["interval"], f"{path}.interval", 1000)
    timeout = _dur(c, values["timeout"], f"{path}.timeout", 1000)
    depth = c.integer(values["depth"], f"{path}.depth")
    if depth is not None and depth not in MONITOR_DEPTHS:
        c.error(f"{path}.depth", f"{depth} is not a depth the agents know; "
                                 f"use one of {', '.join(map(str, MONITOR_DEPTHS))}")
        depth = None
    if name in ("vip", "haproxy") and depth not in (None, 0):
        c.error(f"{path}.depth", "the vip and haproxy agents have only depth 0")
    return Monitor(interval=interval, timeout=timeout, depth=depth or 0)


def _resources(c: Checker, raw: Any) -> Resources:
    values = dict(_RESOURCE_DEFAULTS)
    entry = c.mapping(raw if raw is not None else {}, "resources", tuple(_RESOURCE_DEFAULTS))
    values.update(entry or {})
    monitors = c.mapping(values["monitor"] if values["monitor"] is not None else {},
                         "resources.monitor", tuple(_MONITOR_DEFAULTS)) or {}
    threshold = c.integer(values["migration_threshold"], "resources.migration_threshold", 1)
    default_stickiness = c.integer(values["default_stickiness"],
                                   "resources.default_stickiness", 0, 1_000_000)
    stickiness = c.integer(values["datasources_stickiness"],
                           "resources.datasources_stickiness", 0, 1_000_000)
    preferred = c.integer(values["preferred_score"], "resources.preferred_score", 1,
                          1_000_000)
    if stickiness is not None and preferred is not None and stickiness == preferred:
        c.error("resources.datasources_stickiness",
                f"equals preferred_score ({preferred}): a tie that Pacemaker breaks on its "
                "own; make it higher (the DSD stays where it is when the preferred node "
                "returns) or lower (it moves back)")
    start = _dur(c, values["start_timeout"], "resources.start_timeout", 1000)
    stop = _dur(c, values["stop_timeout"], "resources.stop_timeout", 1000)
    if start.ms and stop.ms:
        for option, why in timings.relation_errors(start_timeout=start.ms / 1000,
                                                   stop_timeout=stop.ms / 1000):
            c.error(f"resources.{option}", why)
    return Resources(
        migration_threshold=threshold or 3,
        failure_timeout=_dur(c, values["failure_timeout"], "resources.failure_timeout"),
        default_stickiness=default_stickiness if default_stickiness is not None else 1,
        datasources_stickiness=stickiness if stickiness is not None else 200,
        preferred_score=preferred or 100,
        cluster_recheck_interval=_dur(c, values["cluster_recheck_interval"],
                                      "resources.cluster_recheck_interval", 1000),
        start_timeout=start,
        stop_timeout=stop,
        api_pe_monitor=_monitor(c, monitors.get("api_pe"), "api_pe"),
        datasources_monitor=_monitor(c, monitors.get("datasources"), "datasources"),
        vip_monitor=_monitor(c, monitors.get("vip"), "vip"),
        haproxy_monitor=_monitor(c, monitors.get("haproxy"), "haproxy"),
    )


def _dur(c: Checker, value: Any, path: str, minimum_ms: int = 0) -> Duration:
    return c.duration(value, path, minimum_ms) or Duration(0, "0s")


def _url(c: Checker, raw: Any, path: str, what: str,
         check: Callable[[str], str | None]) -> str:
    if raw is None:
        c.error(path, f"missing; give the {what}")
        return ""
    text = c.string(raw, path)
    if text is None:
        return ""
    match = _URL_SCHEME.match(text)
    if not match:
        # Not repeated: a URL may carry a password, and Ansible logs this line.
        c.error(path, f"is not a URL (scheme://...); give the {what}")
        return text
    problem = check(match.group(1).lower())
    if problem:
        c.error(path, problem)
    return text


# --------------------------------------------------------------------------
# Entry points


def load_cluster(path: str | Path) -> Cluster:
    """Read and check ``path``; raise ClusterConfigError listing every mistake."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClusterConfigError([(f"{source}: file not found; pass the path of "
                                   "cluster.yaml (see docs/examples/cluster.yaml)")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClusterConfigError([f"{source}: cannot be read: {exc}"]) from None
    return parse_cluster(read_yaml(text, source), source)


def parse_cluster(data: Any, source: str = "cluster.yaml") -> Cluster:
    """Check already-parsed YAML data (a dict) and build the model."""
    c = Checker(source)
    if not isinstance(data, dict):
        c.error("(top level)", f"must be a mapping of the keys {', '.join(_TOP_KEYS)}; "
                               f"got {kind(data)}")
        raise ClusterConfigError(c.lines)
    c.mapping(data, "", _TOP_KEYS)
    name = None
    if data.get("cluster_name") is None:
        c.error("cluster_name", "missing; name the cluster (corosync's cluster_name)")
    else:
        name = c.string(data["cluster_name"], "cluster_name", _CLUSTER_NAME,
                        "letters, digits, '-' and '_', at most 32, starting with a "
                        "letter or digit")
    nodes = _nodes(c, data.get("nodes"))
    # Checks that refer to node names only run when every node is right, so
    # that one wrong node is one line, not one line per reference to it.
    complete = bool(nodes) and len(nodes) == len(data["nodes"])
    if complete and not any(n.api_pe for n in nodes):
        c.error("nodes", "no node has the role api-pe; at least one must serve the API")
    if complete and not any(n.datasources for n in nodes):
        c.error("nodes", "no node has the role datasources; at least one must be able "
                         "to run the datasource process")

    preferred = _preferred(c, data.get("datasources_preferred_node"), nodes, complete)
    multi = isinstance(data.get("nodes"), list) and len(data["nodes"]) > 1
    before = len(c.lines)
    transport_url = _url(
        c, data.get("transport_url"), "transport_url",
        "oslo.messaging transport URL, e.g. rabbit://user:pass@host:5672/",
        lambda scheme: ("fake:// is in-process only (congress-ha-server --all); a cluster "
                        "needs a real broker, e.g. rabbit://") if scheme == "fake" else None)
    bus_ok = len(c.lines) == before
    before = len(c.lines)
    database = _url(
        c, data.get("database_connection"), "database_connection",
        "SQLAlchemy URL of the shared database, e.g. postgresql://...",
        lambda scheme: ("sqlite is one node's local file; the nodes of a cluster must "
                        "share PostgreSQL or MariaDB")
        if scheme.startswith("sqlite") and multi else None)
    database_ok = len(c.lines) == before

    service = _service(c, data.get("service"))
    vip = _vip(c, data.get("vip"), nodes)
    haproxy = _haproxy(c, data.get("haproxy"), data.get("vip") is not None,
                       service.api_port)
    corosync = _corosync(c, data.get("corosync"))
    fencing = _fencing(c, data.get("fencing"), nodes if complete else None)
    resources = _resources(c, data.get("resources"))
    # A URL already wrong is one line, not one more per TLS check of it.
    tls = _tls(c, data.get("tls"), nodes if complete else None,
               transport_url if bus_ok else "", database if database_ok else "")
    if c.lines:
        raise ClusterConfigError(c.lines)
    assert name is not None and preferred is not None
    return Cluster(source=source, name=name, nodes=tuple(nodes),
                   datasources_preferred_node=preferred, transport_url=transport_url,
                   database_connection=database_url(database, tls), vip=vip,
                   haproxy=haproxy, corosync=corosync, fencing=fencing, service=service,
                   resources=resources, tls=tls)


def _preferred(c: Checker, raw: Any, nodes: list[Node], complete: bool) -> str | None:
    path = "datasources_preferred_node"
    candidates = [n for n in nodes if n.datasources]
    if raw is None:
        # The first datasources node, so that a minimal file needs no extra key.
        return candidates[0].name if candidates else None
    name = c.string(raw, path)
    if name is None:
        return None
    node = next((n for n in nodes if n.name == name), None)
    if node is None:
        if complete:
            c.error(path, f"{name!r} is not the name of a node in nodes")
        return None
    if not node.datasources:
        c.error(path, f"{name!r} does not have the role datasources; the preferred node "
                      "must be one that may run the datasource process")
        return None
    return name


__all__ = [
    "ROLES",
    "Cluster",
    "ClusterConfigError",
    "Corosync",
    "Duration",
    "Fencing",
    "Haproxy",
    "Monitor",
    "Node",
    "Resources",
    "Service",
    "Tls",
    "Vip",
    "load_cluster",
    "parse_cluster",
    "parse_duration",
]
