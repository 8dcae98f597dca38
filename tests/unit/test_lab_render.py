"""Rendering of the lab's files: corosync.conf, seed CIB, infra configs, sshd, inventory."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from congress_ha.lab import cluster, infra, inventory, node
from congress_ha.lab.plan import plan_lab


def _plan(**kw):
    return plan_lab("chlab", kw.pop("nodes", 3), root=Path("/var/tmp/congress-ha-lab"), **kw)


def test_corosync_conf_uses_knet_the_lab_addresses_and_the_token():
    text = cluster.files(_plan(token_ms=1500))["corosync.conf"]
    assert "transport: knet" in text and "token: 1500" in text
    assert "cluster_name: chlab" in text
    for i in (1, 2, 3):
        assert f"ring0_addr: 203.0.113.1{i}" in text and f"name: chlab-n{i}" in text
        assert f"nodeid: {i}" in text
    assert "203.0.113.10" not in text  # the infra node is not a cluster member
    assert "crypto_cipher: none" in text and "two_node" not in text


def test_corosync_conf_crypto_and_two_node():
    text = cluster.files(_plan(nodes=2, crypto=True))["corosync.conf"]
    assert "crypto_cipher: aes256" in text and "crypto_hash: sha256" in text
    assert "two_node: 1" in text


def test_lab_files_come_from_the_templates():
    files = cluster.files(_plan())
    assert "(templates/corosync.conf.j2)" in files["corosync.conf"]
    assert files["corosync.conf"].startswith("# corosync configuration of cluster chlab")


def test_seed_cib_has_dc_deadtime_fencing_and_no_feature_set():
    root = ET.fromstring(cluster.files(_plan())["cib.xml"])
    assert root.get("validate-with") == "pacemaker-3.9"
    assert "crm_feature_set" not in root.attrib
    props = {nv.get("name"): nv.get("value")
             for nv in root.iter("nvpair") if nv.get("id").startswith("cib-bootstrap")}
    assert props == {"dc-deadtime": "2s", "cluster-name": "chlab", "stonith-enabled": "true"}
    # One device per node, as render and the roles write them.
    devices = root.findall("configuration/resources/primitive")
    assert [d.get("id") for d in devices] == ["fence-chlab-n1", "fence-chlab-n2",
                                              "fence-chlab-n3"]
    for i, dev in enumerate(devices, 1):
        assert dev.get("class") == "stonith" and dev.get("type") == "fence_congress_lab"
        params = {nv.get("name"): nv.get("value") for nv in dev.iter("nvpair")}
        assert params == {"socket": "/var/tmp/congress-ha-lab/chlab/power.sock",
                          "pcmk_host_list": f"chlab-n{i}"}
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))


def test_seed_cib_of_two_nodes_ignores_the_loss_of_quorum():
    root = ET.fromstring(cluster.files(_plan(nodes=2))["cib.xml"])
    props = {nv.get("name"): nv.get("value") for nv in root.iter("nvpair")}
    assert props["no-quorum-policy"] == "ignore"


def test_seed_cib_without_fencing():
    root = ET.fromstring(cluster.files(_plan(fencing=False, infra=False))["cib.xml"])
    props = {nv.get("name"): nv.get("value") for nv in root.iter("nvpair")}
    assert props["stonith-enabled"] == "false"
    assert root.find("configuration/resources/primitive") is None


def test_rabbitmq_listens_on_the_infra_address_with_its_own_user():
    conf = infra.rabbitmq_conf("203.0.113.10", "s3cret-of-the-lab")
    assert "default_pass = s3cret-of-the-lab" in conf
    assert "listeners.tcp.1 = 203.0.113.10:5672" in conf
    assert "default_user = congress" in conf and "default_permissions.write = .*" in conf
    assert infra.rabbitmq_env("chlab").startswith("NODENAME=chlab@localhost")


def test_postgres_accepts_passwords_from_the_lab_subnet_only():
    hba = infra.pg_hba()
    assert "host all all 203.0.113.0/24 scram-sha-256" in hba
    assert "0.0.0.0/0" not in hba and "trust" in hba.splitlines()[0]


def test_node_pid1_config_makes_the_required_directories_private():
    plan = _plan()
    cfg = node.init_config(plan, plan.node("n1"))
    mounted = {dst for _, dst in cfg["binds"]} | {dst for dst, _ in cfg["tmpfs"]}
    for d in ("/etc/corosync", "/etc/congress-ha", "/var/lib/pacemaker", "/var/lib/corosync",
              "/var/log", "/run", "/dev/shm", "/etc/hosts", "/etc/hostname"):  # fmt: skip
        assert d in mounted, d
    assert all(src.startswith("/var/tmp/congress-ha-lab/chlab/nodes/n1/") for src, _ in
               cfg["binds"])  # fmt: skip
    infra_cfg = node.init_config(plan, plan.node("infra"))
    assert {"/var/lib/rabbitmq", "/var/lib/postgresql"} <= {d for _, d in infra_cfg["binds"]}


def test_sshd_config_listens_on_the_node_address_with_the_lab_key_only():
    plan = _plan()
    text = node.sshd_config(plan, plan.node("n2"))
    assert "ListenAddress 203.0.113.12" in text
    assert "PasswordAuthentication no" in text
    assert f"AuthorizedKeysFile {plan.state_dir}/ssh/authorized_keys" in text


def test_boot_command_enters_every_namespace():
    plan = _plan()
    argv = node.boot_command(plan, plan.node("n1"))
    assert argv[:4] == ["ip", "netns", "exec", "chlab-n1"]
    for flag in ("--mount", "--uts", "--ipc", "--pid", "--fork", "--mount-proc"):
        assert flag in argv
    assert node.nsenter_command(42, ["crm_mon"])[:9] == [
        "nsenter", "-t", "42", "-m", "-u", "-i", "-n", "-p", "--"]


def test_inventory_lists_nodes_with_root_the_key_and_proxy_through_the_lab_netns():
    plan = _plan()
    inv = yaml.safe_load(inventory.render(plan))
    common = inv["all"]["vars"]
    assert common["ansible_user"] == "root"
    assert common["ansible_ssh_private_key_file"].endswith("/chlab/ssh/id_ed25519")
    args = shlex.split(common["ansible_ssh_common_args"])
    proxy = next(a for a in args if a.startswith("ProxyCommand="))
    assert "ip netns exec chlab-lan" in proxy and proxy.endswith("%h %p")
    assert "ControlPath=/var/tmp/congress-ha-lab/chlab/ssh/cm-%C" in args
    hosts = inv["all"]["children"]["cluster"]["hosts"]
    assert hosts["chlab-n3"]["ansible_host"] == "203.0.113.13"
    assert common["congress_ha_transport_url"].startswith(f"rabbit://congress:{plan.secret}@")
