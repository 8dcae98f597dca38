"""cluster.yaml: every mistake is reported with its path, all of them at once."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from congress_ha.cluster.model import (
    ClusterConfigError,
    load_cluster,
    parse_cluster,
    parse_duration,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "examples"
EXAMPLE = yaml.safe_load((DOCS / "cluster.yaml").read_text())


def errors_of(change) -> list[str]:
    data = copy.deepcopy(EXAMPLE)
    change(data)
    with pytest.raises(ClusterConfigError) as info:
        parse_cluster(data, "cluster.yaml")
    return info.value.lines


def one_error(change) -> str:
    lines = errors_of(change)
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------
# The examples


def test_the_documented_example_validates() -> None:
    cluster = load_cluster(DOCS / "cluster.yaml")
    assert [n.name for n in cluster.nodes] == ["node1", "node2", "node3"]
    assert [n.name for n in cluster.api_pe_nodes] == ["node1", "node2", "node3"]
    assert [n.name for n in cluster.datasources_nodes] == ["node1", "node2"]
    assert [n.nodeid for n in cluster.nodes] == [1, 2, 3]
    assert cluster.datasources_preferred_node == "node1"
    # The password never goes into the CIB: its device reads it from a root-only file.
    assert cluster.fencing.device_params("node2") == {
        "lanplus": "1", "username": "admin", "ip": "198.51.100.12",
        "password_script": "/bin/cat /etc/congress-ha/fence/fence-node2.password",
        "pcmk_host_list": "node2"}
    assert cluster.fencing.device_secret("node2") == "CHANGE-ME"
    assert cluster.haproxy.enabled and cluster.vip is not None


def test_the_minimal_example_validates_with_defaults() -> None:
    cluster = load_cluster(DOCS / "cluster-minimal.yaml")
    assert cluster.datasources_preferred_node == "node1"
    assert cluster.vip is None and not cluster.haproxy.enabled
    assert cluster.corosync.crypto and cluster.corosync.token == 3000
    assert cluster.fencing.enabled
    assert cluster.service.api_port == 1789
    assert cluster.service.heartbeat_interval == 0.25
    assert cluster.service.peer_timeout == 1.0
    res = cluster.resources
    assert (res.migration_threshold, res.failure_timeout.text) == (3, "60s")
    assert res.datasources_stickiness > res.preferred_score  # the DSD stays after recovery
    assert res.api_pe_monitor.interval.text == "10s" and res.api_pe_monitor.depth == 10


def test_durations_read_like_pacemaker() -> None:
    assert parse_duration("10s").ms == 10_000
    assert parse_duration(10).text == "10s"
    assert parse_duration("500ms").text == "500ms"
    assert parse_duration("2m").text == "2min"
    assert parse_duration("1h").ms == 3_600_000
    assert parse_duration("ten") is None
    assert parse_duration(1.5) is None


# --------------------------------------------------------------------------
# Files and YAML


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match=r"missing\.yaml: file not found"):
        load_cluster(tmp_path / "missing.yaml")


def test_a_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("cluster_name: c\nnodes:\n  - name: a\n   address: [1\n")
    with pytest.raises(ClusterConfigError) as info:
        load_cluster(path)
    [line] = info.value.lines
    assert line.startswith(f"{path}:4:")
    assert "YAML syntax error" in line


def test_a_key_given_twice_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("cluster_name: c\ncorosync:\n  token: 1000\n  token: 3000\n")
    with pytest.raises(ClusterConfigError) as info:
        load_cluster(path)
    assert info.value.lines == [
        (f"{path}:4:3: key 'token' appears twice in one mapping; keep one (YAML would "
         "silently use the last)")]


def test_the_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ClusterConfigError, match=r"cluster\.yaml: \(top level\): must be"):
        parse_cluster(["a"], "cluster.yaml")


def test_every_mistake_is_reported_at_once() -> None:
    def change(d):
        d["nodes"][1].pop("address")
        d["corosync"]["token"] = "fast"
        d["service"]["auth_strategy"] = "ldap"
        d["colour"] = "blue"
    lines = errors_of(change)
    assert lines == [
        ("cluster.yaml: colour: unknown key; known keys: cluster_name, nodes, "
         "datasources_preferred_node, transport_url, database_connection, vip, haproxy, "
         "corosync, fencing, service, resources, tls"),
        "cluster.yaml: nodes[1].address: missing; every node needs an address",
        "cluster.yaml: service.auth_strategy: 'ldap' is not one of token, keystone",
        "cluster.yaml: corosync.token: must be an integer ms; got the string 'fast'",
    ]


# --------------------------------------------------------------------------
# One mistake, one line, one path

CASES = [
    # keys
    (lambda d: d.update(cluster_nam="x"),
     "cluster.yaml: cluster_nam: unknown key; did you mean 'cluster_name'?"),
    (lambda d: d["corosync"].update(tokn=1),
     "cluster.yaml: corosync.tokn: unknown key; did you mean 'token'?"),
    (lambda d: d["nodes"][0].update(role=["api-pe"]),
     "cluster.yaml: nodes[0].role: unknown key; did you mean 'roles'?"),
    (lambda d: d.pop("cluster_name"),
     "cluster.yaml: cluster_name: missing; name the cluster"),
    (lambda d: d.update(cluster_name="my cluster"),
     "cluster.yaml: cluster_name: 'my cluster' is not valid"),
    # nodes
    (lambda d: d.pop("nodes"), "cluster.yaml: nodes: missing; list the cluster's nodes"),
    (lambda d: d.update(nodes=[]), "cluster.yaml: nodes: must be a non-empty list"),
    (lambda d: d["nodes"].__setitem__(2, "node3"),
     "cluster.yaml: nodes[2]: must be a mapping"),
    (lambda d: d["nodes"][1].pop("address"),
     "cluster.yaml: nodes[1].address: missing; every node needs an address"),
    (lambda d: d["nodes"][2].pop("name"),
     "cluster.yaml: nodes[2].name: missing; every node needs a name"),
    (lambda d: d["nodes"][2].update(name="node_3"),
     "cluster.yaml: nodes[2].name: 'node_3' is not valid: a host name"),
    (lambda d: d["nodes"][2].update(name="node1"),
     ("cluster.yaml: nodes[2].name: 'node1' is also the name of nodes[0]; node names "
      "must be unique")),
    (lambda d: d["nodes"][2].update(address="203.0.113.12"),
     ("cluster.yaml: nodes[2].address: 203.0.113.12 is also the address of nodes[1]; "
      "addresses must be unique")),
    (lambda d: d["nodes"][0].update(address="node1.example.com"),
     "cluster.yaml: nodes[0].address: 'node1.example.com' is not an IPv4 or IPv6 address"),
    (lambda d: d["nodes"][0].update(address="203.0.113.300"),
     "cluster.yaml: nodes[0].address: '203.0.113.300' is not an IPv4 or IPv6 address"),
    (lambda d: d["nodes"][2].update(roles=["api-pe", "dsd"]),
     "cluster.yaml: nodes[2].roles[1]: 'dsd' is not a role; roles are api-pe, datasources"),
    (lambda d: d["nodes"][2].update(roles=["api-pe", "api-pe"]),
     "cluster.yaml: nodes[2].roles[1]: 'api-pe' is listed twice"),
    (lambda d: d["nodes"][2].update(roles=[]),
     "cluster.yaml: nodes[2].roles: must be a non-empty list of roles"),
    (lambda d: d["nodes"][2].pop("roles"),
     "cluster.yaml: nodes[2].roles: missing; give each node one or both roles"),
    (lambda d: d["nodes"][1].update(nodeid=1),
     "cluster.yaml: nodes[1].nodeid: 1 is also the nodeid of nodes[0]"),
    (lambda d: d["nodes"][1].update(nodeid=0),
     "cluster.yaml: nodes[1].nodeid: 0 is out of range"),
    (lambda d: [n.update(roles=["api-pe"]) for n in d["nodes"]] and
     d.pop("datasources_preferred_node"),
     "cluster.yaml: nodes: no node has the role datasources"),
    (lambda d: [n.update(roles=["datasources"]) for n in d["nodes"]],
     "cluster.yaml: nodes: no node has the role api-pe"),
    # preferred node
    (lambda d: d.update(datasources_preferred_node="node3"),
     "cluster.yaml: datasources_preferred_node: 'node3' does not have the role datasources"),
    (lambda d: d.update(datasources_preferred_node="node9"),
     "cluster.yaml: datasources_preferred_node: 'node9' is not the name of a node in nodes"),
    # bus and database
    (lambda d: d.pop("transport_url"), "cluster.yaml: transport_url: missing"),
    (lambda d: d.update(transport_url="fake://"),
     "cluster.yaml: transport_url: fake:// is in-process only"),
    (lambda d: d.update(transport_url="broker:5672"),
     "cluster.yaml: transport_url: is not a URL"),
    (lambda d: d.update(database_connection="sqlite:////var/lib/c.sqlite"),
     "cluster.yaml: database_connection: sqlite is one node's local file"),
    (lambda d: d.update(database_connection="postgresql://a\nb"),
     "cluster.yaml: database_connection: contains a line break"),
    # vip and haproxy
    (lambda d: d["vip"].update(address="10.0.0.300"),
     "cluster.yaml: vip.address: '10.0.0.300' is not an IPv4 or IPv6 address"),
    (lambda d: d["vip"].update(address="203.0.113.11"),
     "cluster.yaml: vip.address: 203.0.113.11 is a node's own address"),
    (lambda d: d["vip"].update(cidr_netmask=33),
     "cluster.yaml: vip.cidr_netmask: 33 is out of range; allowed 1..32"),
    (lambda d: d["vip"].update(address="198.51.100.10", nic=None),
     "cluster.yaml: vip.nic: missing, and no node address is in 198.51.100.0/24"),
    (lambda d: d.pop("vip") and d["haproxy"].update(bind_port=1789),
     "cluster.yaml: haproxy.bind_port: 1789 is also service.api_port"),
    (lambda d: d["haproxy"].update(bind_port=70000),
     "cluster.yaml: haproxy.bind_port: 70000 is out of range; allowed 1..65535"),
    (lambda d: d["haproxy"].update(enabled="yes please"),
     "cluster.yaml: haproxy.enabled: must be true or false"),
    (lambda d: d["haproxy"].update(check_interval="2 seconds"),
     "cluster.yaml: haproxy.check_interval: '2 seconds' is not a duration"),
    # corosync timing
    (lambda d: d["corosync"].update(token=50),
     "cluster.yaml: corosync.token: 50 is out of range; allowed 100..600000 ms"),
    (lambda d: d["corosync"].update(consensus=3000),
     "cluster.yaml: corosync.consensus: 3000 ms is below 1.2 x token (3600 ms)"),
    (lambda d: d["corosync"].update(crypto="on"),
     "cluster.yaml: corosync.crypto: must be true or false; got the string 'on'"),
    (lambda d: d["corosync"].update(cipher="des"),
     "cluster.yaml: corosync.cipher: 'des' is not one of aes256, aes192, aes128"),
    (lambda d: d["corosync"].update(transport="udpu"),
     "cluster.yaml: corosync.transport: 'udpu' is not one of knet"),
    # fencing
    (lambda d: d["fencing"].pop("agent"),
     "cluster.yaml: fencing.agent: missing; fencing is on by default"),
    (lambda d: d["fencing"].update(agent="ipmilan"),
     "cluster.yaml: fencing.agent: 'ipmilan' is not valid: a fence agent's name"),
    (lambda d: d["fencing"]["nodes"].update(node9={"ip": "1.2.3.4"}),
     "cluster.yaml: fencing.nodes.node9: is not the name of a node in nodes"),
    (lambda d: d["fencing"]["params"].update(pcmk_host_list="node1"),
     "cluster.yaml: fencing.params.pcmk_host_list: is set by render"),
    (lambda d: d["fencing"]["nodes"]["node1"].update(ip=["a", "b"]),
     "cluster.yaml: fencing.nodes.node1.ip: must be a single value; got a list"),
    # service timing and auth
    (lambda d: d["service"].update(peer_timeout=0.4),
     "cluster.yaml: service.peer_timeout: peer_timeout 0.4 s is less than twice "
     "heartbeat_interval"),
    (lambda d: d["service"].update(heartbeat_interval="fast"),
     "cluster.yaml: service.heartbeat_interval: must be a number of seconds"),
    (lambda d: d["service"].update(heartbeat_interval=0.001),
     "cluster.yaml: service.heartbeat_interval: 0.001 is below the minimum"),
    (lambda d: d["service"].update(auth_strategy="noauth"),
     "cluster.yaml: service.auth_strategy: noauth would leave the API open on every node"),
    (lambda d: d["service"].update(token_file="api-token"),
     "cluster.yaml: service.token_file: 'api-token' must be an absolute path"),
    (lambda d: d["service"].update(auth_strategy="keystone"),
     "cluster.yaml: service.keystone_authtoken: www_authenticate_uri and auth_type missing"),
    (lambda d: d["service"].update(auth_strategy="keystone", keystone_authtoken={
        "www_authenticate_uri": "http://k:5000/v3", "auth_type": "password",
        "bad key": "x"}),
     "cluster.yaml: service.keystone_authtoken.bad key: an option name with a plain value"),
    (lambda d: d["service"].update(api_port=0),
     "cluster.yaml: service.api_port: 0 is out of range; allowed 1..65535"),
    (lambda d: d["service"].update(shadow_log_size=0),
     "cluster.yaml: service.shadow_log_size: 0 is out of range; allowed >= 1"),
    # resources
    (lambda d: d["resources"].update(migration_threshold=0),
     "cluster.yaml: resources.migration_threshold: 0 is out of range"),
    (lambda d: d["resources"].update(failure_timeout="soon"),
     "cluster.yaml: resources.failure_timeout: 'soon' is not a duration"),
    (lambda d: d["resources"].update(datasources_stickiness=100),
     "cluster.yaml: resources.datasources_stickiness: equals preferred_score (100)"),
    (lambda d: d["resources"].update(preferred_score="high"),
     "cluster.yaml: resources.preferred_score: must be an integer"),
    (lambda d: d["resources"]["monitor"]["api_pe"].update(depth=5),
     "cluster.yaml: resources.monitor.api_pe.depth: 5 is not a depth the agents know"),
    (lambda d: d["resources"]["monitor"]["datasources"].update(interval="0s"),
     "cluster.yaml: resources.monitor.datasources.interval: 0s is too short"),
    (lambda d: d["resources"]["monitor"].update(dsd={}),
     "cluster.yaml: resources.monitor.dsd: unknown key"),
]


@pytest.mark.parametrize("change,expected", CASES,
                         ids=[c[1].split(": ")[1] + "|" + c[1].split(": ")[2][:24]
                              for c in CASES])
def test_each_mistake_is_one_line_with_its_path(change, expected: str) -> None:
    assert one_error(change).startswith(expected)


def test_service_binary_and_ctl_must_be_absolute_paths():
    line = one_error(lambda d: d.setdefault("service", {}).update(
        binary="venv/bin/congress-ha-server"))
    assert line.startswith("cluster.yaml: service.binary") and "absolute path" in line
    data = copy.deepcopy(EXAMPLE)
    data.setdefault("service", {})["ctl"] = "/opt/congress-ha/venv/bin/congress-ha-ctl"
    assert parse_cluster(data, "cluster.yaml").service.ctl.endswith("congress-ha-ctl")


def test_the_service_runs_as_its_own_user_unless_told_otherwise():
    assert parse_cluster(copy.deepcopy(EXAMPLE), "cluster.yaml").service.user == "congress-ha"
    data = copy.deepcopy(EXAMPLE)
    data.setdefault("service", {})["user"] = "root"
    assert parse_cluster(data, "cluster.yaml").service.user == "root"
    line = one_error(lambda d: d.setdefault("service", {}).update(user="$(id)"))
    assert line.startswith("cluster.yaml: service.user: '$(id)' is not valid: a system user")


def test_render_applies_the_timing_relations_the_server_applies():
    """One rule set (congress_ha.timings): shadow_grace over peer_timeout, a start
    timeout covering the measured start, a stop timeout over the server's own."""
    for section, values, words in (
            ("service", {"shadow_grace": 0.5}, "service.shadow_grace: shadow_grace 0.5 s"),
            ("resources", {"start_timeout": "5s"}, "resources.start_timeout: start_timeout"),
            ("resources", {"stop_timeout": "6s"}, "resources.stop_timeout: stop_timeout")):
        lines = errors_of(lambda d, s=section, v=values: d.setdefault(s, {}).update(v))
        assert any(words in line for line in lines), lines


# --------------------------------------------------------------------------
# tls


def test_without_a_tls_section_every_link_is_in_the_clear() -> None:
    data = copy.deepcopy(EXAMPLE)
    del data["tls"]
    data["transport_url"] = "rabbit://congress:x@203.0.113.2:5672/"
    cluster = parse_cluster(data)
    assert cluster.tls is None
    assert "sslmode" not in cluster.database_connection


def test_a_tls_section_turns_every_link_on_and_verifies_the_database_fully() -> None:
    cluster = parse_cluster(copy.deepcopy(EXAMPLE))
    assert cluster.tls is not None
    assert (cluster.tls.api, cluster.tls.bus, cluster.tls.database) == (True, True, True)
    assert cluster.database_connection == (
        "postgresql://congress:CHANGE-ME@203.0.113.2/congress"
        "?sslmode=verify-full&sslrootcert=/etc/congress-ha/tls/ca.pem")


def test_mariadb_gets_pymysql_s_ca_and_hostname_check() -> None:
    data = copy.deepcopy(EXAMPLE)
    data["database_connection"] = "mysql+pymysql://congress:x@203.0.113.2/congress?charset=utf8"
    url = parse_cluster(data).database_connection
    assert url == ("mysql+pymysql://congress:x@203.0.113.2/congress?charset=utf8"
                   "&ssl_ca=/etc/congress-ha/tls/ca.pem&ssl_check_hostname=true")


def test_a_node_may_have_its_own_certificate() -> None:
    data = copy.deepcopy(EXAMPLE)
    data["tls"]["nodes"] = {"node3": {"cert_file": "/etc/pki/n3.pem"}}
    tls = parse_cluster(data).tls
    assert tls.node_files("node3") == {"cert_file": "/etc/pki/n3.pem",
                                       "key_file": "/etc/congress-ha/tls/node.key"}
    assert tls.node_files("node1")["cert_file"] == "/etc/congress-ha/tls/node.pem"


def test_links_turned_off_need_no_files() -> None:
    data = copy.deepcopy(EXAMPLE)
    data["tls"] = {"api": False, "bus": False, "database": False}
    data["transport_url"] = "rabbit://congress:x@203.0.113.2:5672/"
    tls = parse_cluster(data).tls
    assert (tls.api, tls.bus, tls.database) == (False, False, False)


TLS_CASES = [
    (lambda d: d["tls"].pop("ca_file"),
     "cluster.yaml: tls.ca_file: missing: tls.bus and tls.database are on"),
    (lambda d: d["tls"].update(nodes={"node9": {"cert_file": "/x.pem"}}),
     "cluster.yaml: tls.nodes.node9: is not the name of a node in nodes"),
    (lambda d: d["tls"].update(api="yes"), "cluster.yaml: tls.api: must be true or false"),
    (lambda d: d["tls"].update(ciphers="HIGH"), "cluster.yaml: tls.ciphers: unknown key"),
    (lambda d: d.update(transport_url="rabbit://c:x@203.0.113.2/"),
     "cluster.yaml: transport_url: tls.bus is on, but 203.0.113.2 is not on RabbitMQ's "
     "TLS port: write 5671"),
    (lambda d: (d.update(transport_url="rabbit://c:x@203.0.113.2:5672/"),
                d["tls"].update(bus=False, database=False), d["tls"].pop("ca_file")),
     None),
]


@pytest.mark.parametrize("change,expected", TLS_CASES)
def test_tls_mistakes_are_one_line_each(change, expected) -> None:
    if expected is None:
        data = copy.deepcopy(EXAMPLE)
        change(data)
        parse_cluster(data)  # the API alone needs no CA
        return
    line = one_error(change)
    assert line.startswith(expected), line


def test_tls_on_a_single_node_sqlite_database_is_refused() -> None:
    def change(d):
        d["nodes"] = d["nodes"][:1]
        d["datasources_preferred_node"] = "node1"
        d["fencing"]["nodes"] = {"node1": {"ip": "198.51.100.11"}}
        d["database_connection"] = "sqlite:////var/lib/congress-ha/db.sqlite"
    line = one_error(change)
    assert line.startswith("cluster.yaml: tls.database: is on, but database_connection is "
                           "sqlite://")
