"""Every option of the service, in one place (DESIGN.md 4.2).

The option table below is plain data, so the control shim's health path can
read a config file with the standard library alone (``read_light``), while the
server loads it through oslo.config (``load``).  Both report a bad or missing
value with the option and the file, and raise ``ConfigError``.
"""

from __future__ import annotations

import configparser
import importlib
import ipaddress
import os
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from congress_ha.timings import relation_errors

DEFAULT_CONFIG_FILE = "/etc/congress-ha/congress-ha.conf"


class ConfigError(Exception):
    """A configuration problem, worded for the operator."""


class Opt:
    """One option. A plain class, not a dataclass: the health path imports
    this module on every Pacemaker monitor, and dataclasses costs ~4 ms."""

    __slots__ = ("group", "name", "kind", "default", "help", "choices", "minimum",
                 "required")

    def __init__(self, group: str, name: str, kind: str, default: Any, help: str,
                 choices: tuple[str, ...] = (), minimum: float | None = None,
                 required: bool = False):
        self.group, self.name, self.kind, self.default = group, name, kind, default
        self.help, self.choices, self.minimum, self.required = help, choices, minimum, required


OPTIONS: tuple[Opt, ...] = (
    Opt("DEFAULT", "transport_url", "str", None,
        "oslo.messaging transport URL, e.g. rabbit://user:pass@host:5672/. "
        "fake:// is allowed only with --all.", required=True),
    Opt("DEFAULT", "node_id", "str", None,
        "Name of this node on the bus; defaults to the host name."),
    Opt("DEFAULT", "debug", "bool", False, "Log at DEBUG level."),
    Opt("api", "bind_host", "str", "127.0.0.1",
        "Address the REST API listens on (a node address in a cluster; with "
        "auth_strategy = noauth only a loopback address is accepted)."),
    Opt("api", "bind_port", "int", 1789, "Port the REST API listens on.", minimum=1),
    Opt("api", "auth_strategy", "choice", "noauth",
        "keystone: every request needs a Keystone token (keystonemiddleware, options in "
        "[keystone_authtoken]) and oslo.policy's leave; token: X-Auth-Token equal to "
        "token_file's content; noauth: no check.",
        choices=("noauth", "token", "keystone")),
    Opt("api", "token_file", "str", None, "File holding the API token (auth_strategy=token)."),
    Opt("api", "metrics_open", "bool", False,
        "Serve GET /metrics without authentication (for a Prometheus that scrapes with "
        "no token). Metrics show the cluster's topology and counters, no secrets; "
        "default: /metrics needs what every other API call needs."),
    Opt("database", "connection", "str", "sqlite:////var/lib/congress-ha/congress-ha.sqlite",
        "SQLAlchemy URL of the policy and journal database."),
    Opt("ha", "heartbeat_interval", "float", 0.25,
        "Seconds between heartbeats; a peer is lost after peer_timeout of silence.",
        minimum=0.01),
    Opt("ha", "peer_timeout", "float", 1.0,
        "Seconds of silence after which a peer (and a DSD's action leader) is lost. "
        "Must be at least 2 x heartbeat_interval.", minimum=0.02),
    Opt("ha", "shadow_log_size", "int", 10000,
        "Most requests from non-leader PEs that the DSD keeps for replay.", minimum=1),
    Opt("ha", "shadow_log_age", "float", 60.0,
        "Seconds after which an unmatched shadow entry is dropped.", minimum=0.1),
    Opt("ha", "shadow_grace", "float", 2.0,
        "Safety net: a shadow entry the leader has not matched within this many seconds "
        "is executed anyway, with a warning. 0 disables the safety net.", minimum=0.0),
    Opt("ha", "action_journal", "bool", True,
        "Record each action_id in the database before executing it, so a DSD restarted "
        "elsewhere never repeats it."),
    Opt("ha", "rpc_timeout", "float", 2.0, "Seconds an RPC call waits for its reply.",
        minimum=0.1),
    Opt("ha", "rpc_retry", "int", 2,
        "Reconnection attempts for one bus send before it fails with an error.", minimum=0),
    Opt("ha", "run_dir", "str", "/run/congress-ha",
        "Folder of the local control sockets that congress-ha-ctl talks to."),
    Opt("bus", "key_file", "str", None,
        "File of the cluster's bus keys (one per line, the first signs, all verify; "
        "0600 or 0640): every bus message is signed with it and others are dropped. "
        "Required unless every broker of transport_url is on this host."),
    Opt("bus", "max_message_age", "float", 120.0,
        "Seconds a signed bus message stays valid by the receiver's clock; older (or "
        "newer) ones are dropped as replays. Node clocks must agree far better (NTP).",
        minimum=1.0),
    # Bounds on what one request may ask (docs/tuning.md gives each reason). Every
    # PE applies the same stored input, so an unbounded one is a cluster-wide fault.
    Opt("limits", "max_request_bytes", "int", 8 * 1024 * 1024,
        "Largest request body the API reads, chunked bodies included; larger: 413.",
        minimum=1024),
    Opt("limits", "max_rule_chars", "int", 16384,
        "Longest rule text (characters) the API accepts; longer: 400.", minimum=64),
    Opt("limits", "max_rule_literals", "int", 50,
        "Most body literals in one rule (checking a rule costs about the square of "
        "this); more: 400.", minimum=1),
    Opt("limits", "max_rows_per_table", "int", 100000,
        "Most rows one push may put in a table; more: 413.", minimum=1),
    Opt("limits", "max_change_seconds", "float", 10.0,
        "Longest evaluation a new rule or policy may cost, measured before it is "
        "stored; longer: 413 and nothing stored.", minimum=0.1),
    Opt("limits", "max_simulate_seconds", "float", 10.0,
        "Longest evaluation one simulate request may run; longer: 413, and the PE "
        "rebuilds its engine (the simulated change may be half applied).", minimum=0.1),
    Opt("limits", "api_engine_requests", "int", 6,
        "API requests that may use or wait for the policy engine at once (of the API's "
        "8 threads); more: 503 with Retry-After, so threads stay free for /healthz.",
        minimum=1),
    Opt("limits", "api_engine_wait", "float", 5.0,
        "Seconds an API request waits for the engine while an evaluation runs; then "
        "503 with Retry-After.", minimum=0.1),
    Opt("limits", "api_connection_limit", "int", 1000,
        "Connections the API holds open at once; past it new ones wait.", minimum=10),
    Opt("limits", "api_idle_timeout", "float", 30.0,
        "Seconds an idle API connection is kept open.", minimum=1.0),
    # Drivers
    Opt("drivers", "file_allowed_dirs", "dirs", ("/var/lib/congress-ha/files",),
        "Absolute folders, comma separated, that the file driver may read (path) and "
        "append to (action_log); nothing outside them, nothing through a link. The API "
        "node checks a new datasource against its own value, the DSD against its own "
        "at every start, read and append (the authority): give every node the same. "
        "Never /."),
    # TLS
    Opt("api", "tls_cert_file", "str", None,
        "PEM certificate (chain) of the API's TLS listener; with tls_key_file set the API "
        "speaks only HTTPS (TLS 1.2 or later) on bind_host:bind_port."),
    Opt("api", "tls_key_file", "str", None,
        "PEM private key of tls_cert_file (mode 0600 or 0640: it is a secret)."),
    Opt("api", "tls_ca_file", "str", None,
        "CA certificate(s) that congress-ha-ctl's health check trusts for the API's "
        "certificate; default: the system's CAs."),
    Opt("engine", "now_resolution", "float", 1.0,
        "Seconds between the values of the clock that the now(x) builtin reads (the "
        "DSD publishes it as table builtin:now, the same on every PE); 0: no clock, "
        "now(x) holds for no x.", minimum=0.0),
)

_BY_KEY = {(o.group, o.name): o for o in OPTIONS}


def limit(settings: Any, name: str) -> Any:
    """``[limits] name`` from ``settings``, or its default where settings has none."""
    group = getattr(settings, "limits", None) if settings is not None else None
    value = getattr(group, name, None) if group is not None else None
    return _BY_KEY[("limits", name)].default if value is None else value


def _convert(opt: Opt, raw: str, where: str) -> Any:
    text = raw.strip()
    try:
        if opt.kind == "int":
            value: Any = int(text)
        elif opt.kind == "float":
            value = float(text)
        elif opt.kind == "bool":
            low = text.lower()
            if low not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise ValueError
            value = low in ("true", "yes", "1", "on")
        elif opt.kind == "dirs":
            value = parse_dirs(opt, text, where)
        elif opt.kind == "choice":
            if text not in opt.choices:
                raise ConfigError(
                    f"{where}: [{opt.group}] {opt.name} = {text!r} is not one of "
                    f"{', '.join(opt.choices)}")
            value = text
        else:
            value = text
    except ValueError:
        raise ConfigError(
            f"{where}: [{opt.group}] {opt.name} = {text!r} is not a valid {opt.kind}") from None
    if opt.minimum is not None and value < opt.minimum:
        raise ConfigError(
            f"{where}: [{opt.group}] {opt.name} = {text} is below the minimum {opt.minimum}")
    return value


def parse_dirs(opt: Opt, text: str, where: str) -> tuple[str, ...]:
    """A comma-separated list of absolute folders, normalised; never / or empty
    (ConfigError naming ``where`` and the option). cluster.yaml's check too."""
    name = f"{where}: [{opt.group}] {opt.name}"
    dirs = [d.strip() for d in text.split(",") if d.strip()]
    if not dirs:
        raise ConfigError(f"{name} is empty: name the folders, comma separated "
                          f"(default {', '.join(opt.default)})")
    out: list[str] = []
    for d in dirs:
        if not d.startswith("/"):
            raise ConfigError(f"{name}: {d!r} is not an absolute path; write it from /")
        if ".." in d.split("/"):
            raise ConfigError(f"{name}: {d!r} holds '..'; name the folder itself")
        norm = os.path.normpath(d)
        if norm.startswith("//"):  # POSIX keeps a leading '//'
            norm = "/" + norm.lstrip("/")
        if norm == "/":
            raise ConfigError(f"{name}: '/' would let the file driver read and append "
                              "any file; name the folders it needs, e.g. "
                              f"{opt.default[0]}")
        if norm not in out:
            out.append(norm)
    return tuple(out)


class Settings:
    """The validated options of one process, as attributes: ``s.ha.peer_timeout``."""

    def __init__(self, path: str, values: dict[tuple[str, str], Any]):
        self.path = path
        self.values = values

    def get(self, group: str, name: str) -> Any:
        return self.values[(group, name)]

    def __getattr__(self, group: str) -> Any:
        if group.startswith("_") or group in ("path", "values"):
            raise AttributeError(group)
        names = {n: v for (g, n), v in self.values.items() if g == group}
        if not names and group != "DEFAULT":
            raise AttributeError(group)
        return _Group(names)


class _Group:
    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def broker_hosts(transport_url: str) -> list[tuple[str, int]]:
    """The (host, port) of every broker a ``rabbit://`` URL names.

    Several brokers are written as oslo.messaging reads them, each with its own
    credentials: ``rabbit://u:p@host1:5672,u:p@host2:5672,u:p@host3:5672/``.
    ValueError if a port is not a number.
    """
    netloc = urlsplit(transport_url).netloc
    hosts = []
    for part in netloc.split(","):
        where = part.rsplit("@", 1)[-1]
        if where.startswith("["):  # [IPv6] or [IPv6]:port
            host, _, rest = where[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port = where.partition(":")
        hosts.append((host or "localhost", int(port or 5672)))
    return hosts


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ***, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _check_bus(values: dict[tuple[str, str], Any], where: str) -> None:
    key_file = values[("bus", "key_file")]
    url = values[("DEFAULT", "transport_url")]
    if key_file:
        from congress_ha.bus.seal import BadKey, read_keys
        try:
            read_keys(key_file)
        except BadKey as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return
    if url.startswith("fake:"):
        return
    try:
        remote = [h for h, _ in broker_hosts(url) if not _loopback(h)]
    except ValueError:
        raise ConfigError(f"{where}: [DEFAULT] transport_url: a port is not a number") from None
    if remote:
        raise ConfigError(f"{where}: [bus] key_file is required with a broker on another "
                          f"host ({', '.join(remote)}): every bus message is signed with "
                          "the cluster's key, the same file on every node; write one with "
                          "`congress-ha-ctl bus-key --write /etc/congress-ha/bus.key`")


def _passed_through(section: str) -> bool:
    """Sections that other libraries read through oslo.config from the same file."""
    return section.startswith("oslo_") or section == "keystone_authtoken"


def parse_file(path: str, overrides: dict[tuple[str, str], Any] | None = None) -> Settings:
    """Read and validate one INI file with the standard library only.

    This is what both the server and the shim use, so every check lives here;
    oslo.config is only the transport's view of the same values.
    """
    where = path
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found; pass --config-file with the "
                          "path of congress-ha.conf")
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: cannot be parsed: {first}") from None
    known_groups = {o.group for o in OPTIONS}
    for section in parser.sections():
        if section not in known_groups and not _passed_through(section):
            raise ConfigError(f"{where}: unknown section [{section}]; known sections: "
                              f"{', '.join(sorted(known_groups - {'DEFAULT'}))}")
        if _passed_through(section):
            continue  # oslo.messaging's, oslo.policy's, keystonemiddleware's own
        for name in parser.options(section):
            if name not in parser.defaults() and (section, name) not in _BY_KEY:
                raise ConfigError(f"{where}: unknown option [{section}] {name}")
    for name in parser.defaults():
        if ("DEFAULT", name) not in _BY_KEY:
            raise ConfigError(f"{where}: unknown option [DEFAULT] {name}")

    values: dict[tuple[str, str], Any] = {}
    for opt in OPTIONS:
        # Option names never repeat across groups, so a section's view through
        # configparser's DEFAULT inheritance cannot pick up another group's value.
        if opt.group == "DEFAULT":
            raw = parser.defaults().get(opt.name)
        elif parser.has_section(opt.group):
            raw = parser[opt.group].get(opt.name)
        else:
            raw = None
        if raw is None or raw.strip() == "":
            values[(opt.group, opt.name)] = opt.default
        else:
            values[(opt.group, opt.name)] = _convert(opt, raw, where)
    for key, value in (overrides or {}).items():
        values[key] = value
    if values[("DEFAULT", "node_id")] is None:
        values[("DEFAULT", "node_id")] = socket.gethostname()
    for opt in OPTIONS:
        if opt.required and values[(opt.group, opt.name)] in (None, ""):
            raise ConfigError(f"{where}: [{opt.group}] {opt.name} is required: {opt.help}")
    broken = relation_errors(heartbeat_interval=values[("ha", "heartbeat_interval")],
                             peer_timeout=values[("ha", "peer_timeout")],
                             shadow_grace=values[("ha", "shadow_grace")])
    if broken:
        option, why = broken[0]
        raise ConfigError(f"{where}: [ha] {option}: {why}")
    _check_bus(values, where)
    if values[("api", "auth_strategy")] == "noauth" and not _loopback(
            values[("api", "bind_host")]):
        raise ConfigError(f"{where}: [api] auth_strategy = noauth with bind_host = "
                          f"{values[('api', 'bind_host')]}: an API without authentication "
                          "listens only on a loopback address (127.0.0.1, ::1); set "
                          "auth_strategy = token (with token_file) or keystone")
    if values[("api", "auth_strategy")] == "keystone" and not parser.has_section(
            "keystone_authtoken"):
        raise ConfigError(f"{where}: [api] auth_strategy = keystone needs a "
                          "[keystone_authtoken] section (www_authenticate_uri, auth_type "
                          "and its credentials), as in any OpenStack service")
    if values[("api", "auth_strategy")] == "token":
        token_file = values[("api", "token_file")]
        if not token_file:
            raise ConfigError(f"{where}: [api] token_file is required when "
                              "auth_strategy = token")
        try:
            with open(token_file, encoding="utf-8") as fh:
                empty = not fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: [api] token_file = {token_file}: cannot be read "
                              f"({exc.strerror})") from None
        if empty:
            raise ConfigError(f"{where}: [api] token_file = {token_file} is empty; put the "
                              "API token in it")
    _check_tls(values, where)
    return Settings(path=path, values=values)


def _check_tls(values: dict[tuple[str, str], Any], where: str) -> None:
    """Cheap checks of the API's TLS files (the server loads them at start: api/tls.py)."""
    cert, key = values[("api", "tls_cert_file")], values[("api", "tls_key_file")]
    if bool(cert) != bool(key):
        given, missing = ("tls_cert_file", "tls_key_file") if cert else (
            "tls_key_file", "tls_cert_file")
        raise ConfigError(f"{where}: [api] {given} is set but {missing} is not; the API's "
                          "TLS listener needs both the certificate and its key")
    for name in ("tls_cert_file", "tls_key_file", "tls_ca_file"):
        path = values[("api", name)]
        if path and not os.path.isabs(path):
            raise ConfigError(f"{where}: [api] {name} = {path} must be an absolute path")


def oslo_conf(settings: Settings):
    """An oslo.config ConfigOpts for oslo.messaging, built from ``settings``.

    oslo.messaging reads its own options (the rabbit driver's) from the same
    file, so the [oslo_messaging_*] sections of congress-ha.conf work as in any
    OpenStack service.
    """
    from oslo_config import cfg  # heavy: kept off the health path

    conf = cfg.ConfigOpts()
    # oslo.messaging 18.x reads these groups on every send but registers them
    # only on the global cfg.CONF (FACTS.md): register them on ours too.
    for module, group in (("oslo_messaging._tracing.client", "oslo_messaging_tracing"),
                          ("oslo_messaging._metrics.client", "oslo_messaging_metrics")):
        try:
            opts = getattr(importlib.import_module(module), group)
        except (ImportError, AttributeError):
            continue  # another oslo.messaging release: nothing to register
        conf.register_opts(opts, group=group)
    conf(args=[], default_config_files=[settings.path], project="congress-ha",
         validate_default_values=True)
    return conf
