"""A lab's nodes: isolated network, own hostname and directories, sshd with the lab key."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from pathlib import Path

import yaml

from congress_ha.lab import netns

from .conftest import run_lab


def test_nodes_reach_each_other_and_the_infra_node(cluster_lab):
    for src in ("n1", "n2", "n3"):
        for dst in ("n1", "n2", "n3", "infra"):
            r = cluster_lab.exec(src, "ping", "-c1", "-W2", cluster_lab.addr(dst))
            assert r.returncode == 0, f"{src} -> {dst}: {r.stdout}{r.stderr}"


def test_nodes_have_no_route_out(cluster_lab):
    r = cluster_lab.exec("n1", "ip", "route")
    assert r.returncode == 0
    assert "default" not in r.stdout
    assert r.stdout.split()[0] == "203.0.113.0/24"
    t = time.monotonic()
    r = cluster_lab.exec("n1", "ping", "-c1", "-W1", "192.0.2.1")
    assert r.returncode != 0
    assert time.monotonic() - t < 1.0, "an unroutable ping must fail at once"


def test_root_namespace_has_no_lab_route_address_or_bridge(cluster_lab):
    assert netns.routed_conflicts() == []
    r = subprocess.run(["ip", "link", "show", cluster_lab.plan.bridge], capture_output=True,
                       check=False)
    assert r.returncode != 0


def test_each_node_has_its_own_hostname(cluster_lab):
    for n in cluster_lab.plan.nodes:
        r = cluster_lab.exec(n.short, "hostname")
        assert r.stdout.strip() == n.name


def test_etc_corosync_is_private_to_each_node(cluster_lab):
    probe = f"probe-{uuid.uuid4().hex}"
    path = f"/etc/corosync/{probe}"
    assert cluster_lab.exec("n1", "touch", path).returncode == 0
    try:
        assert cluster_lab.exec("n1", "test", "-e", path).returncode == 0
        assert cluster_lab.exec("n2", "test", "-e", path).returncode == 1
        assert not Path(path).exists()
    finally:
        cluster_lab.exec("n1", "rm", "-f", path)


def test_run_dev_shm_and_var_log_are_private(cluster_lab):
    for d in ("/run", "/dev/shm", "/var/log", "/var/lib/pacemaker"):
        probe = f"{d}/probe-{uuid.uuid4().hex}"
        assert cluster_lab.exec("n1", "touch", probe).returncode == 0
        try:
            assert cluster_lab.exec("n2", "test", "-e", probe).returncode == 1, probe
            assert not Path(probe).exists(), probe
        finally:
            cluster_lab.exec("n1", "rm", "-f", probe)


def test_each_node_sees_only_its_own_processes(cluster_lab):
    r = cluster_lab.exec("n1", "ps", "-eo", "pid=,comm=")
    pids = {int(line.split()[0]): line.split()[1] for line in r.stdout.splitlines()}
    assert 1 in pids
    assert "beam.smp" not in pids.values()  # RabbitMQ runs in the infra node only


def test_sshd_answers_with_the_lab_key_from_the_lab_namespace(cluster_lab):
    r = subprocess.run(["ip", "netns", "exec", cluster_lab.plan.lan_netns,
                        *cluster_lab.ssh_args(), f"root@{cluster_lab.addr('n1')}", "hostname"],
                       capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{cluster_lab.name}-n1"


def test_sshd_answers_from_another_node(cluster_lab):
    r = cluster_lab.exec("n2", *cluster_lab.ssh_args(), f"root@{cluster_lab.addr('n3')}",
                         "hostname")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{cluster_lab.name}-n3"


def test_sshd_refuses_a_key_that_is_not_the_lab_key(cluster_lab, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    args = cluster_lab.ssh_args()
    args[args.index("-i") + 1] = str(other)
    r = subprocess.run(["ip", "netns", "exec", cluster_lab.plan.lan_netns, *args,
                        f"root@{cluster_lab.addr('n1')}", "true"],
                       capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert r.returncode == 255


def test_inventory_reaches_nodes_from_the_root_namespace(cluster_lab):
    inv = yaml.safe_load(cluster_lab.cli("inventory").stdout)
    common = inv["all"]["vars"]
    assert common["ansible_user"] == "root"
    hosts = inv["all"]["children"]["cluster"]["hosts"]
    assert set(hosts) == {f"{cluster_lab.name}-n{i}" for i in (1, 2, 3)}
    assert inv["all"]["children"]["infra"]["hosts"][f"{cluster_lab.name}-infra"]
    host = f"{cluster_lab.name}-n2"
    argv = ["ssh", "-i", common["ansible_ssh_private_key_file"], "-o", "BatchMode=yes",
            *shlex.split(common["ansible_ssh_common_args"]),
            f"{common['ansible_user']}@{hosts[host]['ansible_host']}", "hostname"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == host


def test_status_shows_nodes_addresses_services_and_urls(cluster_lab):
    out = cluster_lab.cli("status").stdout
    for n in cluster_lab.plan.nodes:
        assert n.name in out and n.address in out
    # The lab's own password, drawn at `up`, is masked in the text (not in --json).
    secret = cluster_lab.plan.secret
    assert len(secret) == 32 and secret not in out
    assert "rabbit://congress:***@203.0.113.10:5672/congress" in out
    assert "postgresql://congress:***@203.0.113.10:5432/congress" in out
    assert "corosync pacemaker sshd" in out
    assert "postgresql rabbitmq sshd" in out


PG_PROBE = """
import psycopg2
c = psycopg2.connect(host="203.0.113.10", user="congress", password="PASSWORD",
                     dbname="congress", connect_timeout=5)
cur = c.cursor(); cur.execute("select current_user, current_database()"); print(cur.fetchone())
"""

AMQP_PROBE = """
import amqp
c = amqp.Connection(host="203.0.113.10:5672", userid="congress", password="PASSWORD",
                    virtual_host="VHOST", connect_timeout=5)
c.connect(); print(c.server_properties["product"]); c.close()
"""


def test_postgresql_accepts_the_congress_user_from_a_node(cluster_lab):
    import sys

    # The lab's own password, drawn at `up`.
    r = cluster_lab.exec("n1", sys.executable, "-c",
                         PG_PROBE.replace("PASSWORD", cluster_lab.plan.secret))
    assert r.returncode == 0, r.stderr
    assert "('congress', 'congress')" in r.stdout


def test_rabbitmq_accepts_the_congress_user_from_a_node(cluster_lab):
    import sys

    probe = AMQP_PROBE.replace("PASSWORD", cluster_lab.plan.secret)
    r = cluster_lab.exec("n2", sys.executable, "-c", probe.replace("VHOST", "congress"))
    assert r.returncode == 0, r.stderr
    assert "RabbitMQ" in r.stdout
    # The cluster's own vhost only: the default one is not the user's.
    r = cluster_lab.exec("n2", sys.executable, "-c", probe.replace("VHOST", "/"))
    assert r.returncode != 0 and "RabbitMQ" not in r.stdout, r.stdout + r.stderr


def test_two_labs_use_the_same_addresses_without_seeing_each_other(cluster_lab, plain_lab):
    r = plain_lab.exec("n1", *plain_lab.ssh_args(), "root@203.0.113.12", "hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{plain_lab.name}-n2"
    # The plain lab has no infra node: its 203.0.113.10 is nobody.
    assert plain_lab.exec("n1", "ping", "-c1", "-W1", "203.0.113.10").returncode != 0


def test_unknown_lab_is_reported_with_exit_3():
    r = run_lab("zz0nolab", "status")
    assert r.returncode == 3
    assert "no lab zz0nolab" in r.stderr
    assert "Traceback" not in r.stderr
