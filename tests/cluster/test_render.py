"""Rendering the example cluster, and what Pacemaker makes of the result.

crm_verify checks the CIB; crm_simulate plays node failures and returns on
the 3-node example (node1 and node2 datasources, node3 api-pe only, DSD
preferred on node1) and we read its plan back as XML.
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from congress_ha import config as service_config
from congress_ha.cluster import cli
from congress_ha.cluster.render import RenderError, render, templates_dir

from .conftest import (
    EXAMPLE,
    MINIMAL,
    need,
    render_to,
    run,
    simulate,
    variant,
    with_status,
)

NODES = ["node1", "node2", "node3"]


# --------------------------------------------------------------------------
# Files


def test_render_writes_every_file_of_the_example(example_out: Path) -> None:
    names = sorted(p.name for p in example_out.iterdir())
    assert names == ["cib.xml", "congress-ha.node1.conf", "congress-ha.node2.conf",
                     "congress-ha.node3.conf", "corosync.conf", "fence-node1.password",
                     "fence-node2.password", "fence-node3.password", "haproxy.cfg",
                     "resources.crm", "resources.pcs.sh"]


def test_render_returns_the_paths_it_wrote(tmp_path: Path) -> None:
    written = render(EXAMPLE, tmp_path)
    assert sorted(written) == sorted(tmp_path.iterdir())


def test_files_with_secrets_are_private(example_out: Path) -> None:
    for name in ("congress-ha.node1.conf", "resources.crm", "cib.xml", "fence-node1.password"):
        assert (example_out / name).stat().st_mode & 0o077 == 0, name
    assert os.access(example_out / "resources.pcs.sh", os.X_OK)


def test_haproxy_cfg_is_skipped_and_said_so_when_haproxy_is_off(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "haproxy.cfg").write_text("stale\n")
    args = argparse.Namespace(cluster=str(MINIMAL), out=str(tmp_path), templates=None,
                              check=False)
    assert cli.run_render(args) == 0
    out = capsys.readouterr().out
    assert "haproxy.cfg: not written, haproxy is not enabled" in out
    assert not (tmp_path / "haproxy.cfg").exists()


def test_templates_dir_is_the_repositorys_and_can_be_overridden(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONGRESS_HA_TEMPLATES", raising=False)
    assert templates_dir() == Path(__file__).resolve().parents[2] / "templates"
    monkeypatch.setenv("CONGRESS_HA_TEMPLATES", str(tmp_path))
    with pytest.raises(RenderError, match="not a congress-ha templates folder"):
        templates_dir()


def test_cli_reports_every_mistake_on_stderr_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cluster.yaml"
    bad.write_text("cluster_name: c\nnodes:\n  - {name: a, roles: [api-pe]}\n")
    args = argparse.Namespace(cluster=str(bad), out=str(tmp_path / "out"), templates=None,
                              check=False)
    assert cli.run_render(args) == 2
    err = capsys.readouterr().err
    assert f"{bad}: nodes[0].address: missing; every node needs an address" in err
    assert f"{bad}: transport_url: missing" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_runs_as_a_subcommand_of_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="congress-ha-ctl")
    cli.add_render_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["render", "--cluster", "c.yaml", "--out", "d"])
    assert args.func is cli.run_render and args.cluster == "c.yaml" and args.out == "d"


def test_cluster_package_does_not_import_the_runtime() -> None:
    code = ("import sys, congress_ha.cluster.cli, congress_ha.cluster.render; "
            "bad = [m for m in sys.modules if m.split('.')[1:2] and m.split('.')[1] in "
            "('server', 'bus', 'api', 'engine', 'store', 'datasources', 'roles', 'leader')"
            " and m.startswith('congress_ha.')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_service_config_of_every_node_passes_the_services_own_parser(
        example_out: Path, tmp_path: Path) -> None:
    token = tmp_path / "api-token"  # on a node, the congress_ha role writes it
    token.write_text("t0ken\n")
    key = tmp_path / "bus.key"  # and the bus key
    key.write_text("k" * 64 + "\n")
    key.chmod(0o600)
    for name in NODES:
        text = (example_out / f"congress-ha.{name}.conf").read_text()
        assert "auth_strategy = token\ntoken_file = /etc/congress-ha/api-token\n" in text
        assert "[bus]\n" in text and "\nkey_file = /etc/congress-ha/bus.key\n" in text
        conf = tmp_path / f"congress-ha.{name}.conf"  # the session's copy stays as rendered
        conf.write_text(text.replace("/etc/congress-ha/api-token", str(token))
                        .replace("/etc/congress-ha/bus.key", str(key)))
        settings = service_config.parse_file(str(conf))
        assert settings.get("DEFAULT", "node_id") == name
        assert settings.get("api", "bind_port") == 1789
        assert settings.get("ha", "heartbeat_interval") == 0.25
        assert settings.get("ha", "peer_timeout") == 1.0
        assert settings.get("database", "connection").startswith("postgresql")
        assert settings.get("drivers", "file_allowed_dirs") == ("/var/lib/congress-ha/files",)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(example_out / "congress-ha.node2.conf")
    assert parser["api"]["bind_host"] == "203.0.113.12"


def test_corosync_conf_passes_corosync_t(example_out: Path, tmp_path: Path) -> None:
    corosync = need("corosync")
    keygen = need("corosync-keygen")
    key = tmp_path / "authkey"
    run([keygen, "-k", str(key)])
    text = (example_out / "corosync.conf").read_text()
    assert "crypto_cipher: aes256" in text and "crypto_hash: sha256" in text
    assert "two_node" not in text  # three nodes
    # corosync -t wants the key and one nodelist address on this host.
    text = text.replace("    token: 3000\n", f"    token: 3000\n    keyfile: {key}\n")
    text = text.replace("ring0_addr: 203.0.113.11", "ring0_addr: 127.0.0.1")
    conf = tmp_path / "corosync.conf"
    conf.write_text(text)
    proc = run([corosync, "-t", "-c", str(conf)], check=False)
    assert proc.returncode == 0, proc.stderr


def test_corosync_conf_of_two_nodes_sets_two_node_and_crypto_off_is_none(
        tmp_path: Path) -> None:
    out = render_to(variant(tmp_path, "two", MINIMAL, corosync={"crypto": False,
                                                                 "token": 1000}),
                    tmp_path / "out")
    text = (out / "corosync.conf").read_text()
    assert re.search(r"^\s+two_node: 1$", text, re.MULTILINE)
    assert re.search(r"^\s+crypto_cipher: none$", text, re.MULTILINE)
    assert re.search(r"^\s+token: 1000$", text, re.MULTILINE)
    conf = tmp_path / "corosync.conf"
    conf.write_text(text.replace("ring0_addr: 203.0.113.11", "ring0_addr: 127.0.0.1"))
    proc = run([need("corosync"), "-t", "-c", str(conf)], check=False)
    assert proc.returncode == 0, proc.stderr


def test_haproxy_cfg_balances_over_the_api_pe_nodes(example_out: Path) -> None:
    text = (example_out / "haproxy.cfg").read_text()
    assert "bind 203.0.113.10:1789" in text
    assert "option httpchk GET /healthz" in text
    servers = re.findall(r"^\s+server (\S+) (\S+) check( .*)?$", text, re.MULTILINE)
    assert [s[:2] for s in servers] == [("node1", "203.0.113.11:1789"),
                                        ("node2", "203.0.113.12:1789"),
                                        ("node3", "203.0.113.13:1789")]
    # The example turns TLS on: checks verify each API's certificate and name.
    assert all("check-ssl verify required ca-file /etc/congress-ha/tls/ca.pem" in s[2]
               and f"verifyhost {s[0]}" in s[2] for s in servers)
    assert "daemon" not in re.sub(r"#.*", "", text)  # Pacemaker keeps it in the foreground


def test_pcs_script_is_posix_sh_and_shellcheck_clean(example_out: Path) -> None:
    script = example_out / "resources.pcs.sh"
    run(["sh", "-n", str(script)])
    run([need("shellcheck"), "-s", "sh", str(script)])


# --------------------------------------------------------------------------
# crm_verify


def test_rendered_cib_validates_against_pacemaker_3_9(example_out: Path) -> None:
    root = ET.parse(example_out / "cib.xml").getroot()
    assert root.get("validate-with") == "pacemaker-3.9"
    rng = Path("/usr/share/pacemaker/pacemaker-3.9.rng")
    run([need("xmllint"), "--noout", "--relaxng", str(rng), str(example_out / "cib.xml")])


@pytest.mark.parametrize("base", [EXAMPLE, MINIMAL], ids=["example", "minimal"])
def test_rendered_cib_passes_crm_verify(base: Path, tmp_path: Path) -> None:
    out = render_to(base, tmp_path / "out")
    cib = with_status(out / "cib.xml", tmp_path / "live.xml")
    proc = run([need("crm_verify"), "--verbose", "--xml-file", str(cib)], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cib_properties_follow_cluster_yaml(example_out: Path, tmp_path: Path) -> None:
    props = {nv.get("name"): nv.get("value") for nv in
             ET.parse(example_out / "cib.xml").getroot().iter("nvpair")}
    assert props["stonith-enabled"] == "true"
    assert props["cluster-recheck-interval"] == "1min"
    out = render_to(variant(tmp_path, "nofence", fencing={"enabled": False}), tmp_path / "o")
    root = ET.parse(out / "cib.xml").getroot()
    assert not [p for p in root.iter("primitive") if p.get("class") == "stonith"]
    assert {nv.get("name"): nv.get("value") for nv in root.iter("nvpair")}[
        "stonith-enabled"] == "false"


# --------------------------------------------------------------------------
# crm_simulate on the 3-node example


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory, example_out: Path) -> Path:
    """The example after its first transition: everything started, every node up."""
    tmp = tmp_path_factory.mktemp("sim")
    live = with_status(example_out / "cib.xml", tmp / "live.xml")
    sim = simulate(live, save=tmp / "started.xml")
    assert sim.running_on("congress-datasources") == ["node1"]
    return tmp / "started.xml"


def test_everything_starts_where_the_model_says(started: Path) -> None:
    sim = simulate(started)
    assert sim.actions(op="start") == [] and sim.actions(op="stop") == []  # settled
    assert sim.running_on("congress-api-pe") == NODES
    assert sim.running_on("haproxy") == NODES
    assert sim.running_on("congress-datasources") == ["node1"]  # the preferred node
    vip = sim.running_on("congress-vip")
    assert len(vip) == 1
    for name in NODES:
        assert sim.running_on(f"fence-{name}") != []


def test_datasources_move_to_the_other_datasources_node_when_their_node_fails(
        started: Path) -> None:
    sim = simulate(started, "--node-fail=node1")
    assert sim.fenced() == ["node1"]
    assert ("congress-datasources", "start", "node2") in sim.actions()
    assert sim.running_on("congress-datasources") == ["node2"]  # never node3: not its role


def test_surviving_clone_instances_are_untouched_when_an_api_pe_node_fails(
        started: Path) -> None:
    for failed in NODES:
        sim = simulate(started, f"--node-fail={failed}")
        touched = [a for a in sim.actions(resource_prefix="congress-api-pe")
                   if a[1] in ("start", "stop") and a[2] != failed]
        assert touched == [], f"{failed} failed: {touched}"
        assert sim.running_on("congress-api-pe") == [n for n in NODES if n != failed]
        touched = [a for a in sim.actions(resource_prefix="haproxy")
                   if a[1] in ("start", "stop") and a[2] != failed]
        assert touched == [], f"{failed} failed: {touched}"


def test_datasources_stay_when_a_node_without_them_fails(started: Path) -> None:
    sim = simulate(started, "--node-fail=node3")
    assert sim.actions(resource_prefix="congress-datasources") == []
    assert sim.running_on("congress-datasources") == ["node1"]


def test_datasources_stop_rather_than_run_on_a_node_without_the_role(started: Path) -> None:
    sim = simulate(started, "--node-fail=node1", "--node-fail=node2")
    assert sim.running_on("congress-datasources") == []
    assert sim.running_on("congress-api-pe") == ["node3"]


def test_vip_follows_haproxy_to_a_surviving_node(started: Path) -> None:
    [vip_node] = simulate(started).running_on("congress-vip")
    sim = simulate(started, f"--node-fail={vip_node}")
    [moved] = sim.running_on("congress-vip")
    assert moved != vip_node and moved in sim.running_on("haproxy")


def test_a_monitor_failure_restarts_datasources_in_place_below_the_threshold(
        started: Path) -> None:
    sim = simulate(started, "--op-inject=congress-datasources_monitor_10000@node1=7")
    assert ("congress-datasources", "start", "node1") in sim.actions()
    assert sim.running_on("congress-datasources") == ["node1"]


@pytest.mark.parametrize("stickiness,home", [(200, "node2"), (0, "node1")],
                         ids=["stickiness-above-preference-stays",
                              "stickiness-zero-moves-back"])
def test_preferred_node_gets_datasources_back_only_as_configured(
        tmp_path: Path, stickiness: int, home: str) -> None:
    cluster = variant(tmp_path, "sticky", resources={
        "datasources_stickiness": stickiness, "preferred_score": 100})
    out = render_to(cluster, tmp_path / "out")
    live = with_status(out / "cib.xml", tmp_path / "live.xml")
    simulate(live, save=tmp_path / "started.xml")
    failed = simulate(tmp_path / "started.xml", "--node-fail=node1",
                      save=tmp_path / "failed.xml")
    assert failed.running_on("congress-datasources") == ["node2"]
    back = simulate(tmp_path / "failed.xml", "--node-up=node1")
    assert back.running_on("congress-datasources") == [home]
    assert back.running_on("congress-api-pe") == NODES
    # Whatever happens to the DSD, node1's return starts only node1's instances.
    assert [a for a in back.actions(resource_prefix="congress-api-pe")
            if a[1] in ("start", "stop") and a[2] != "node1"] == []


def test_keystone_renders_its_section_and_the_service_reads_it(tmp_path: Path) -> None:
    import yaml

    from tests.cluster.conftest import EXAMPLE, render_to

    data = yaml.safe_load(EXAMPLE.read_text())
    data["service"].pop("token_file", None)
    key = tmp_path / "bus.key"
    key.write_text("k" * 64 + "\n")
    key.chmod(0o600)
    data["service"].update(auth_strategy="keystone", bus_key_file=str(key), keystone_authtoken={
        "www_authenticate_uri": "https://keystone.example:5000/v3", "auth_type": "password",
        "auth_url": "https://keystone.example:5000/v3", "username": "congress",
        "password": "s3cret", "project_name": "service", "user_domain_name": "Default",
        "project_domain_name": "Default", "service_token_roles_required": True})
    source = tmp_path / "cluster.yaml"
    source.write_text(yaml.safe_dump(data))
    out = render_to(source, tmp_path / "out")
    conf = out / "congress-ha.node1.conf"
    text = conf.read_text()
    assert "auth_strategy = keystone\n" in text and "token_file" not in text
    assert "\n[keystone_authtoken]\n" in text
    assert "\nwww_authenticate_uri = https://keystone.example:5000/v3\n" in text
    assert "\nservice_token_roles_required = true\n" in text
    assert oct(conf.stat().st_mode & 0o777) == "0o600"  # it holds the service password
    settings = service_config.parse_file(str(conf))
    assert settings.get("api", "auth_strategy") == "keystone"


def test_service_file_allowed_dirs_is_rendered_and_read_by_the_service(tmp_path: Path) -> None:
    import yaml

    from tests.cluster.conftest import EXAMPLE, render_to

    data = yaml.safe_load(EXAMPLE.read_text())
    data["service"].update(file_allowed_dirs=["/srv/congress/data", "/var/log/congress-ha/"],
                           token_file=str(tmp_path / "api-token"),
                           bus_key_file=str(tmp_path / "bus.key"))
    (tmp_path / "api-token").write_text("t0ken\n")
    (tmp_path / "bus.key").write_text("k" * 64 + "\n")
    (tmp_path / "bus.key").chmod(0o600)
    source = tmp_path / "cluster.yaml"
    source.write_text(yaml.safe_dump(data))
    conf = render_to(source, tmp_path / "out") / "congress-ha.node1.conf"
    assert "\nfile_allowed_dirs = /srv/congress/data, /var/log/congress-ha\n" in conf.read_text()
    assert service_config.parse_file(str(conf)).get("drivers", "file_allowed_dirs") == (
        "/srv/congress/data", "/var/log/congress-ha")
    data["service"]["file_allowed_dirs"] = ["/"]
    source.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception, match=r"service.file_allowed_dirs: .*'/' would let"):
        render_to(source, tmp_path / "out2")


# --------------------------------------------------------------------------
# TLS (cluster.yaml tls)


def test_tls_reaches_every_node_s_service_config(example_out: Path) -> None:
    for name in NODES:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(example_out / f"congress-ha.{name}.conf")
        assert parser["api"]["tls_cert_file"] == "/etc/congress-ha/tls/node.pem"
        assert parser["api"]["tls_key_file"] == "/etc/congress-ha/tls/node.key"
        assert parser["api"]["tls_ca_file"] == "/etc/congress-ha/tls/ca.pem"
        assert parser["oslo_messaging_rabbit"]["ssl"] == "true"
        assert parser["oslo_messaging_rabbit"]["ssl_ca_file"] == "/etc/congress-ha/tls/ca.pem"
        assert parser["database"]["connection"].endswith(
            "?sslmode=verify-full&sslrootcert=/etc/congress-ha/tls/ca.pem")


def test_oslo_messaging_reads_the_rendered_ssl_options(example_out: Path,
                                                       tmp_path: Path) -> None:
    token = tmp_path / "api-token"
    token.write_text("t0ken\n")
    key = tmp_path / "bus.key"
    key.write_text("k" * 40 + "\n")
    key.chmod(0o600)
    conf = tmp_path / "node1.conf"
    conf.write_text((example_out / "congress-ha.node1.conf").read_text()
                    .replace("/etc/congress-ha/api-token", str(token))
                    .replace("/etc/congress-ha/bus.key", str(key)))
    from oslo_messaging._drivers import impl_rabbit

    oslo = service_config.oslo_conf(service_config.parse_file(str(conf)))
    oslo.register_opts(impl_rabbit.rabbit_opts, group="oslo_messaging_rabbit")
    assert oslo.oslo_messaging_rabbit.ssl is True
    assert oslo.oslo_messaging_rabbit.ssl_ca_file == "/etc/congress-ha/tls/ca.pem"


def test_without_tls_render_says_every_link_is_in_the_clear(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = variant(tmp_path, "plain", tls=None,
                   transport_url="rabbit://congress:x@203.0.113.2:5672/")
    args = argparse.Namespace(cluster=str(path), out=str(tmp_path / "out"), templates=None,
                              check=False)
    assert cli.run_render(args) == 0
    assert "TLS: off on every link (API, bus, database)" in capsys.readouterr().out
    text = (tmp_path / "out" / "congress-ha.node1.conf").read_text()
    assert "tls_cert_file" not in text and "oslo_messaging_rabbit" not in text
    assert "sslmode" not in text


@pytest.mark.parametrize("tls", [True, False])
def test_haproxy_cfg_passes_haproxy_c(tmp_path: Path, tls: bool) -> None:
    haproxy = need("haproxy")
    ca = tmp_path / "ca.pem"
    from congress_ha.lab import tls as ca_tools

    ca_tools.make_ca(tmp_path / "ca", "render test CA").cert.rename(ca)
    changes: dict[str, object] = {"tls__ca_file": str(ca)} if tls else {
        "tls": None, "transport_url": "rabbit://congress:x@203.0.113.2:5672/"}
    out = render_to(variant(tmp_path, "haproxy", **changes), tmp_path / "out")
    text = (out / "haproxy.cfg").read_text()
    assert ("mode tcp" in text) is tls  # TLS passes through: haproxy holds no key
    assert (f"check-ssl verify required ca-file {ca}" in text) is tls
    proc = run([haproxy, "-c", "-f", str(out / "haproxy.cfg")], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# --------------------------------------------------------------------------
# Fence passwords: in root-only files, never in the CIB


def test_fence_passwords_go_to_private_files_and_the_cib_reads_them(tmp_path: Path) -> None:
    source = variant(tmp_path, "fence", fencing__params__password="shared-pw-1",
                     fencing__nodes__node3={"ip": "198.51.100.13", "password": "own-pw-3"})
    out = render_to(source, tmp_path / "out")
    for name in ("cib.xml", "resources.crm", "resources.pcs.sh"):
        text = (out / name).read_text()
        assert "shared-pw-1" not in text and "own-pw-3" not in text, name
        for node in NODES:
            assert f"/bin/cat /etc/congress-ha/fence/fence-{node}.password" in text, name
    assert (out / "fence-node1.password").read_text() == "shared-pw-1\n"
    assert (out / "fence-node3.password").read_text() == "own-pw-3\n"  # the node's own wins
    for node in NODES:
        assert oct((out / f"fence-{node}.password").stat().st_mode & 0o777) == "0o600"
    # Without passwords the files go: none is left behind from an earlier render.
    no_pw = variant(tmp_path, "nopw", fencing__params__password=None,
                    fencing__nodes__node3={"ip": "198.51.100.13"})
    render_to(no_pw, out)
    assert not list(out.glob("fence-*.password"))
    assert "password_script" not in (out / "cib.xml").read_text()


def test_a_fence_password_and_a_script_of_ones_own_are_refused_together(
        tmp_path: Path) -> None:
    source = variant(tmp_path, "both", fencing__params__password_script="/usr/bin/vault-pw")
    with pytest.raises(Exception, match=r"fencing\.params\.password_script: and a password"):
        render_to(source, tmp_path / "out")
    # A script alone is the operator's own way, kept as given.
    own = variant(tmp_path, "own", fencing__params__password=None,
                  fencing__params__password_script="/usr/bin/vault-pw node")
    out = render_to(own, tmp_path / "out2")
    assert 'name="password_script" value="/usr/bin/vault-pw node"' in (out / "cib.xml").read_text()
    assert not list(out.glob("fence-*.password"))


def test_both_congress_primitives_run_as_the_service_user(example_out: Path) -> None:
    cib = (example_out / "cib.xml").read_text()
    for rsc in ("congress-api-pe", "congress-datasources"):
        assert (f'id="{rsc}-instance_attributes-user" name="user" value="congress-ha"'
                in cib), rsc
    assert "user=congress-ha" in (example_out / "resources.crm").read_text()
    assert "user=congress-ha" in (example_out / "resources.pcs.sh").read_text()
