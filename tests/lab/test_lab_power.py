"""Power and links: kill, stop, start, partition, heal, and the fence agent."""

from __future__ import annotations

import subprocess
import time

from congress_ha.lab import netns

from .conftest import wait_for

AGENT = "/usr/sbin/fence_congress_lab"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_powers_the_node_off_and_start_boots_it(plain_lab):
    pid1 = plain_lab.init_pid("n2")
    inside = netns.netns_pids(f"{plain_lab.name}-n2")
    assert pid1 in inside and len(inside) >= 2  # PID 1 and sshd at least
    out = plain_lab.cli("kill", "n2").stdout
    assert "powered off" in out
    assert not any(_alive(p) for p in inside), "every process of the node must be gone"
    assert plain_lab.exec("n1", "ping", "-c1", "-W1", plain_lab.addr("n2")).returncode != 0
    assert "is off" in plain_lab.exec("n2", "true").stderr
    out = plain_lab.cli("start", "n2").stdout
    assert "up (203.0.113.12)" in out
    assert plain_lab.init_pid("n2") not in (None, pid1)
    assert plain_lab.exec("n1", "ping", "-c1", "-W2", plain_lab.addr("n2")).returncode == 0


def test_stop_shuts_the_node_down_cleanly(plain_lab):
    out = plain_lab.cli("stop", "n2").stdout
    assert "shut down cleanly" in out
    assert plain_lab.init_pid("n2") is None
    log = (plain_lab.plan.node_dir(plain_lab.plan.node("n2")) / "console.log").read_text()
    assert "stopping sshd" in log
    plain_lab.cli("start", "n2")
    assert plain_lab.exec("n2", "hostname").stdout.strip() == f"{plain_lab.name}-n2"


def test_start_of_a_running_node_changes_nothing(plain_lab):
    pid1 = plain_lab.init_pid("n1")
    assert "already on" in plain_lab.cli("start", "n1").stdout
    assert plain_lab.init_pid("n1") == pid1


def test_partition_cuts_the_link_and_heal_restores_it(plain_lab):
    plain_lab.cli("partition", "n2")
    try:
        assert plain_lab.exec("n1", "ping", "-c1", "-W1", plain_lab.addr("n2")).returncode != 0
        status = plain_lab.cli("status").stdout
        assert "partitioned" in status
    finally:
        plain_lab.cli("heal", "n2")
    assert plain_lab.exec("n1", "ping", "-c1", "-W2", plain_lab.addr("n2")).returncode == 0


def _agent(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([AGENT, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_fence_agent_powers_a_node_off_and_on(plain_lab):
    sock = str(plain_lab.plan.power_socket)
    node = f"{plain_lab.name}-n2"
    r = _agent("-o", "status", "-n", node, "--socket", sock)
    assert r.returncode == 0 and "ON" in r.stdout
    old = plain_lab.init_pid("n2")
    r = _agent(stdin=f"action=off\nport={node}\nsocket={sock}\n")
    assert r.returncode == 0, r.stderr
    assert not _alive(old)
    r = _agent("-o", "status", "-n", node, "--socket", sock)
    assert r.returncode == 2 and "OFF" in r.stdout  # fence-agents: 2 means off
    r = _agent("-o", "on", "-n", node, "--socket", sock)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: plain_lab.exec("n2", "hostname").stdout.strip() == node, 30, "n2 booted")


def test_fence_agent_reboot_list_and_monitor(plain_lab):
    sock = str(plain_lab.plan.power_socket)
    node = f"{plain_lab.name}-n1"
    old = plain_lab.init_pid("n1")
    r = _agent("-o", "reboot", "-n", node, "--socket", sock)
    assert r.returncode == 0, r.stderr
    assert plain_lab.init_pid("n1") not in (None, old)
    r = _agent("-o", "list", "--socket", sock)
    assert r.returncode == 0
    assert f"{node},{node}" in r.stdout and f"{plain_lab.name}-n2" in r.stdout
    assert _agent("-o", "monitor", "--socket", sock).returncode == 0
    r = _agent("-o", "status", "-n", "nosuchnode", "--socket", sock)
    assert r.returncode != 0


def test_fence_agent_gives_the_password_its_script_reads_and_the_switch_checks_it(
        plain_lab, tmp_path):
    """As a deployed CIB runs it: password_script reads a root-only file (never the
    password on a command line); the lab's switch refuses a wrong one."""
    sock = str(plain_lab.plan.power_socket)
    node = f"{plain_lab.name}-n1"
    secret = plain_lab.plan.fence_secret
    assert len(secret) == 32, "the lab drew no fence password"
    right, wrong = tmp_path / "right.password", tmp_path / "wrong.password"
    right.write_text(secret + "\n")
    wrong.write_text("not-" + secret + "\n")
    for f in (right, wrong):
        f.chmod(0o600)
    for path, ok in ((right, True), (wrong, False)):
        r = _agent(stdin=f"action=status\nport={node}\nsocket={sock}\n"
                         f"password_script=/bin/cat {path}\n")
        assert (r.returncode == 0) is ok, r.stdout + r.stderr
        assert ("wrong password" in r.stdout + r.stderr) is not ok, r.stdout + r.stderr
        assert secret not in r.stdout + r.stderr


def test_fence_agent_metadata_works_as_hacluster(plain_lab):
    r = subprocess.run(["su", "-s", "/bin/sh", "hacluster", "-c", f"{AGENT} -o metadata"],
                       capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '<resource-agent name="fence_congress_lab"' in r.stdout
    for action in ("on", "off", "reboot", "status", "monitor", "list", "metadata"):
        assert f'<action name="{action}"' in r.stdout


def test_power_cut_and_restart_take_under_a_few_seconds(plain_lab):
    t = time.monotonic()
    plain_lab.cli("kill", "n1")
    plain_lab.cli("start", "n1")
    assert time.monotonic() - t < 10
