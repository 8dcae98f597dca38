"""congress-ha-server and congress-ha-ctl from outside: exit codes and messages."""

import json
import signal
import subprocess

import pytest

from tests.support.broker import free_port
from tests.support.http import request
from tests.support.procs import VENV_BIN, Cluster, wait_for

SERVER = str(VENV_BIN / "congress-ha-server")
CTL = str(VENV_BIN / "congress-ha-ctl")


def run(*args, timeout=30):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def conf(tmp_path, text):
    p = tmp_path / "c.conf"
    p.write_text(text)
    return str(p)


def test_server_refuses_a_bad_option_naming_it_and_the_file(tmp_path):
    path = conf(tmp_path, "[DEFAULT]\ntransport_url = rabbit://h/\n[ha]\npeer_timeout = x\n")
    r = run(SERVER, "--config-file", path, "--datasources")
    assert r.returncode == 2
    assert "[ha] peer_timeout" in r.stderr and path in r.stderr
    assert "Traceback" not in r.stderr


def test_server_without_roles_says_which_to_choose(tmp_path):
    r = run(SERVER, "--config-file", conf(tmp_path, "[DEFAULT]\ntransport_url = x\n"))
    assert r.returncode == 2 and "--all" in r.stderr


def test_fake_transport_is_refused_outside_all_in_one_mode(tmp_path):
    r = run(SERVER, "--config-file", conf(tmp_path, "[DEFAULT]\ntransport_url = fake://\n"),
            "--datasources")
    assert r.returncode == 2 and "fake://" in r.stderr and "--all" in r.stderr


def test_an_unreachable_broker_is_a_clear_error_not_a_hang(tmp_path):
    port = free_port()  # nothing listens there
    path = conf(tmp_path, f"[DEFAULT]\ntransport_url = rabbit://g:g@127.0.0.1:{port}/\n"
                          f"[ha]\nrpc_timeout = 0.2\nrun_dir = {tmp_path}/run\n")
    r = run(SERVER, "--config-file", path, "--datasources", timeout=20)
    assert r.returncode == 1
    assert f"cannot reach the message broker (127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


def test_health_says_not_running_with_ocf_code_7(tmp_path):
    path = conf(tmp_path, f"[DEFAULT]\ntransport_url = x\n[ha]\nrun_dir = {tmp_path}\n")
    r = run(CTL, "health", "--role", "api-pe", "--config-file", path)
    assert r.returncode == 7
    assert r.stdout.startswith("not running")


def test_health_with_a_missing_config_is_not_installed_on_this_node(tmp_path):
    r = run(CTL, "health", "--role", "datasources", "--config-file", str(tmp_path / "x"))
    assert r.returncode == 5
    assert "config file not found" in r.stderr


def test_all_in_one_mode_runs_every_role_on_the_fake_transport(tmp_path):
    cluster = Cluster(tmp_path, "fake://")
    cluster.seed_datasources(rate=20, window=20)
    proc = cluster.add("solo", ["--all"]).start()
    try:
        wait_for(lambda: proc.ctl("health", "--role", "datasources", "--depth", "20")
                 .returncode == 0, 30, "all-in-one healthy")
        # Ready means every role, the API included: it answers at once.
        status, body = request(proc.api_port, "GET", "/v1/policies", timeout=5)
        assert status == 200 and body["results"], body
        # One process, so the same answer; but a loaded machine can put the PE behind
        # the 20/s ticker for a moment (it then says "not synced" and resyncs).
        wait_for(lambda: proc.ctl("health", "--role", "api-pe", "--depth", "20")
                 .returncode == 0, 30, "all-in-one api-pe healthy")
        wait_for(lambda: len(cluster.actions()) >= 10, 30, "actions executed")
        leader = json.loads(proc.ctl("leader", "--json").stdout)["dsds"][0]
        assert leader["leader"] == "solo:all"
        proc.signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=10) == 0
    finally:
        cluster.stop_all()


@pytest.mark.parametrize("argv", [["status"], ["leader"]])
def test_status_and_leader_with_nothing_running_exit_7_with_a_reason(tmp_path, argv):
    path = conf(tmp_path, "[DEFAULT]\ntransport_url = fake://\n"
                          f"[ha]\nrun_dir = {tmp_path}\nrpc_timeout = 0.5\n")
    r = run(CTL, *argv, "--config-file", path)
    assert r.returncode == 7
    assert r.stderr.strip() and "Traceback" not in r.stderr


def test_bus_key_writes_a_new_0600_key_and_never_overwrites(tmp_path, capsys):
    from congress_ha import ctl
    from congress_ha.bus.seal import read_keys

    path = tmp_path / "bus.key"
    assert ctl.main(["bus-key", "--write", str(path)]) == 0
    assert path.stat().st_mode & 0o777 == 0o600
    (key,) = read_keys(str(path))
    assert len(key) == 64
    assert ctl.main(["bus-key", "--write", str(path)]) != 0
    assert "File exists" in capsys.readouterr().err and read_keys(str(path)) == [key]
    assert ctl.main(["bus-key"]) == 0
    assert len(capsys.readouterr().out.strip()) == 64


def test_status_lists_refused_bus_messages_as_a_problem():
    from congress_ha.ctl import _problems

    problems = _problems({"member": "n1:api-pe",
                          "bus_refused": {"forged": 2, "invalid": 1, "replayed": 0}})
    assert [(p["kind"], p["detail"].split(" (")[0]) for p in problems] == [
        ("refused bus messages", "2 forged")]
    assert _problems({"member": "n1:api-pe", "bus_refused": {"invalid": 3}}) == []


def test_metrics_prints_the_local_dsds_text_or_writes_it_whole_with_out(tmp_path, capsys):
    import shutil
    import tempfile

    from congress_ha import ctl
    from congress_ha.control import socket_path
    from congress_ha.control_server import ControlServer

    run_dir = tempfile.mkdtemp(prefix="chm-")  # short: a socket path has ~100 bytes
    path = conf(tmp_path, f"[DEFAULT]\ntransport_url = x\n[ha]\nrun_dir = {run_dir}\n")
    assert ctl.main(["metrics", "--config-file", path]) == 7
    assert "no datasources process answers" in capsys.readouterr().err
    text = "# TYPE congress_ha_leader_present gauge\ncongress_ha_leader_present 1.0\n"
    server = ControlServer(socket_path(run_dir, "datasources"),
                           lambda req: {"ok": True, "text": text} if req["cmd"] == "metrics"
                           else {"ok": False, "reason": "no"})
    server.start()
    try:
        assert ctl.main(["metrics", "--config-file", path]) == 0
        assert capsys.readouterr().out == text
        out = tmp_path / "congress_ha.prom"
        assert ctl.main(["metrics", "--config-file", path, "--out", str(out)]) == 0
        assert out.read_text() == text and oct(out.stat().st_mode & 0o777) == "0o644"
        assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []
        assert ctl.main(["metrics", "--role", "api-pe", "--config-file", path]) == 7
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
