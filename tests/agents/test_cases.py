"""Error paths, one case each: these parameters, this action, this exit code.

Most cases need no broker: a fake server (a shell script named like the real
one, placed first on PATH) and a fake ctl stand in where only the agent's own
logic is under test.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import pytest

from tests.agents.conftest import (
    OCF_ERR_CONFIGURED,
    OCF_ERR_GENERIC,
    OCF_ERR_INSTALLED,
    OCF_NOT_RUNNING,
    OCF_SUCCESS,
    VENV_BIN,
    alive,
)

ROLES = ["api-pe", "datasources"]

# A server that runs until SIGTERM, one that ignores SIGTERM, and a ctl that
# always finds the server healthy.
POLITE = "while :; do sleep 0.1; done\n"
STUBBORN = "trap '' TERM\n" + POLITE
HEALTHY_CTL = 'echo "ok: fake"\n'


def fakes(service, server: str = POLITE) -> dict[str, str]:
    service.fake("congress-ha-server", server)
    service.fake("fake-ctl", HEALTHY_CTL)
    return {"ctl": "fake-ctl"}


# -- configuration and installation ----------------------------------------------

@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ["validate-all", "start"])
def test_a_config_missing_on_this_node_is_not_installed_here(role, action, service):
    # 5, not 6: the cluster may still run the resource on another node.
    res = service.agent(role, action, config=str(service.base / "missing.conf"))
    assert res.rc == OCF_ERR_INSTALLED, res
    assert "missing.conf not found" in res.reason


@pytest.mark.parametrize("role", ROLES)
def test_probe_with_missing_config_is_not_running(role, service):
    res = service.agent(role, "monitor", probe=True, config=str(service.base / "missing.conf"))
    assert res.rc == OCF_NOT_RUNNING, res


def test_unreadable_config_is_not_installed_here(service):
    res = service.agent("api-pe", "validate-all", config=str(service.base))  # a folder
    assert res.rc == OCF_ERR_INSTALLED, res


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ["validate-all", "start"])
def test_missing_binary_is_not_installed(role, action, service):
    res = service.agent(role, action, binary="congress-ha-server-not-here")
    assert res.rc == OCF_ERR_INSTALLED, res
    assert "congress-ha-server-not-here not found in PATH" in res.reason


@pytest.mark.parametrize("role", ROLES)
def test_probe_with_missing_binary_is_not_installed(role, service):
    # A probe with nothing running: Pacemaker reads 5 as "stopped, and cannot
    # run here"; ocf-tester accepts 7 or 5.
    res = service.agent(role, "monitor", probe=True, binary="congress-ha-server-not-here")
    assert res.rc == OCF_ERR_INSTALLED, res


def test_missing_ctl_is_not_installed(service):
    res = service.agent("datasources", "validate-all", ctl="congress-ha-ctl-not-here")
    assert res.rc == OCF_ERR_INSTALLED, res


@pytest.mark.parametrize("action", ["validate-all", "start"])
def test_unknown_user_is_not_installed_and_the_reason_says_how_to_create_it(action, service):
    res = service.agent("api-pe", action, user="no-such-user-chag")
    assert res.rc == OCF_ERR_INSTALLED, res  # on this node: another may have the user
    assert "user 'no-such-user-chag' does not exist" in res.reason
    assert "useradd --system" in res.reason


def test_the_default_user_is_the_service_s_own(agents):
    meta = subprocess.run([str(agents / "api-pe"), "meta-data"], capture_output=True,
                          text=True, env={"OCF_ROOT": "/usr/lib/ocf"}, check=True).stdout
    assert re.search(r'<parameter name="user".*?default="congress-ha"', meta, re.S)


def test_a_config_the_user_cannot_read_is_not_installed(service):
    service.conf.chmod(0o600)  # root's alone
    res = service.agent("api-pe", "validate-all", user="nobody")
    assert res.rc == OCF_ERR_INSTALLED, res
    assert "user 'nobody' cannot read" in res.reason and "chmod 0640" in res.reason


def test_start_runs_the_server_as_the_user_and_makes_its_run_dir(live_service):
    """The DSD as user nobody, with the service's files as a deployment keeps them:
    its group may read, nobody else; the agent makes [ha] run_dir for it.

    The server is this checkout's venv: where nobody cannot run it (a checkout
    under a folder only root enters), the agent must say so instead."""
    s = live_service
    user = pwd.getpwnam("nobody")
    server = shutil.which("congress-ha-server", path=str(VENV_BIN))
    can_run = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--init-groups",
                              "--", "env", "HOME=/", str(VENV_BIN / "python"), "-c", "pass"],
                             check=False, cwd="/").returncode == 0
    run_dir = s.run_dir
    shutil.rmtree(run_dir)
    for root, dirs, files in os.walk(s.base):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
            os.chmod(os.path.join(root, name), 0o750 if name in dirs else 0o640)
    os.chown(s.base, user.pw_uid, user.pw_gid)
    s.base.chmod(0o750)
    res = s.agent("datasources", "start", user="nobody")
    if not can_run:  # e.g. a venv whose python is in root's home: the agent says so
        assert res.rc == OCF_ERR_INSTALLED, res
        assert f"user 'nobody' cannot read {s.conf} or run {server}" in res.reason, res
        return
    assert res.rc == OCF_SUCCESS, f"{res}\n{s.log('datasources')[-2000:]}"
    pid = s.pid("datasources")
    assert os.stat(f"/proc/{pid}").st_uid == user.pw_uid
    st = os.stat(run_dir)
    assert (st.st_uid, oct(st.st_mode & 0o777)) == (user.pw_uid, "0o750")
    assert s.agent("datasources", "monitor", depth=10, user="nobody").rc == OCF_SUCCESS
    assert s.agent("datasources", "stop", user="nobody").rc == OCF_SUCCESS


def test_node_id_with_a_colon_is_not_configured(service):
    res = service.agent("api-pe", "validate-all", node_id="a:b")
    assert res.rc == OCF_ERR_CONFIGURED, res


def test_validate_all_succeeds_with_good_parameters(service):
    assert service.agent("api-pe", "validate-all").rc == OCF_SUCCESS


# -- start ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_server_exit_2_on_bad_config_is_not_configured(role, service):
    service.conf.write_text(service.conf.read_text().replace(
        "[ha]\n", "[ha]\npeer_timeout = 0.001\n"))
    res = service.agent(role, "start")
    assert res.rc == OCF_ERR_CONFIGURED, res
    assert "peer_timeout" in res.reason and str(service.conf) in res.reason, res.reason
    assert service.pid(role) is None


def test_server_that_cannot_run_fails_start_with_its_last_log_line(service):
    # The broker of `service` is unreachable: the server exits 1 and says why.
    service.conf.write_text(service.conf.read_text().replace(
        "[ha]\n", "[ha]\nrpc_timeout = 0.1\n"))
    res = service.agent("datasources", "start")
    assert res.rc == OCF_ERR_GENERIC, res
    assert "exited during start (code 1)" in res.reason
    assert "cannot run" in res.reason, res.reason
    assert service.pid("datasources") is None


def test_start_that_never_gets_healthy_fails_within_the_timeout(service):
    service.fake("congress-ha-server", POLITE)
    service.fake("sick-ctl", 'echo "failed: bus down"; exit 1\n')
    res = service.agent("api-pe", "start", ctl="sick-ctl", timeout_ms=4000)
    assert res.rc == OCF_ERR_GENERIC, res
    assert "not healthy" in res.reason and "bus down" in res.reason
    assert res.seconds < 4.0
    # The process is left for the stop that Pacemaker sends next.
    assert alive(service.pid("api-pe"))


# -- stop -----------------------------------------------------------------------

def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(service):
    params = fakes(service, server=STUBBORN)
    assert service.agent("datasources", "start", **params).rc == OCF_SUCCESS
    pid = service.pid("datasources")
    assert alive(pid)
    res = service.agent("datasources", "stop", timeout_ms=4000, **params)
    assert res.rc == OCF_SUCCESS, res
    assert not alive(pid)
    assert "SIGKILL" in res.stderr
    assert 2.0 <= res.seconds < 4.0  # waited for SIGTERM within the op's timeout
    assert service.pid("datasources") is None


def test_double_stop_succeeds(service):
    params = fakes(service)
    assert service.agent("api-pe", "start", **params).rc == OCF_SUCCESS
    assert service.agent("api-pe", "stop", **params).rc == OCF_SUCCESS
    assert service.agent("api-pe", "stop", **params).rc == OCF_SUCCESS


def test_stop_with_missing_config_still_stops(service):
    params = fakes(service)
    assert service.agent("api-pe", "start", **params).rc == OCF_SUCCESS
    pid = service.pid("api-pe")
    service.conf.unlink()
    assert service.agent("api-pe", "stop", **params).rc == OCF_SUCCESS
    assert not alive(pid)


# -- monitor --------------------------------------------------------------------

@pytest.mark.parametrize("probe", [False, True])
def test_monitor_of_a_crashed_process_is_a_failure(probe, service):
    # OCF: 7 only for a cleanly stopped resource. A pid file whose process
    # died (no stop removed it) is a crash, for a probe as well.
    params = fakes(service)
    assert service.agent("datasources", "start", **params).rc == OCF_SUCCESS
    pid = service.pid("datasources")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    res = service.agent("datasources", "monitor", probe=probe, **params)
    assert res.rc == OCF_ERR_GENERIC, res
    assert f"process {pid}" in res.reason and "is gone" in res.reason
    # Pacemaker's recovery: stop cleans up, then the resource is cleanly stopped.
    assert service.agent("datasources", "stop", **params).rc == OCF_SUCCESS
    assert service.agent("datasources", "monitor", **params).rc == OCF_NOT_RUNNING


def test_pid_file_of_another_program_is_not_ours(service):
    other = subprocess.Popen(["sleep", "30"])
    try:
        (service.base / "api-pe.pid").write_text(f"{other.pid}\n")
        res = service.agent("api-pe", "monitor")
        assert res.rc == OCF_ERR_GENERIC, res
        assert service.agent("api-pe", "stop").rc == OCF_SUCCESS
        assert other.poll() is None  # never signal a stranger
    finally:
        other.kill()
        other.wait()


def test_monitor_without_pid_file_is_not_running(service):
    res = service.agent("api-pe", "monitor")
    assert res.rc == OCF_NOT_RUNNING, res


def test_depth_0_never_runs_ctl(service):
    params = fakes(service)
    assert service.agent("api-pe", "start", **params).rc == OCF_SUCCESS
    res = service.agent("api-pe", "monitor", depth=0, ctl="ctl-that-is-not-installed")
    assert res.rc == OCF_SUCCESS, res


@pytest.mark.parametrize(("ctl_exit", "expected"), [
    (0, OCF_SUCCESS), (1, OCF_ERR_GENERIC), (6, OCF_ERR_CONFIGURED),
    (7, OCF_ERR_GENERIC),  # our process runs but does not answer: not a clean stop
])
def test_monitor_depth_10_maps_ctl_health(ctl_exit, expected, service):
    params = fakes(service)
    assert service.agent("api-pe", "start", **params).rc == OCF_SUCCESS
    service.fake("mapped-ctl", f'echo "line from ctl {ctl_exit}"; exit {ctl_exit}\n')
    res = service.agent("api-pe", "monitor", depth=10, ctl="mapped-ctl")
    assert res.rc == expected, res
    if expected != OCF_SUCCESS:
        assert f"line from ctl {ctl_exit}" in res.reason


@pytest.mark.parametrize(("level", "depth"), [("5", "0"), ("15", "10"), ("30", "20")])
def test_unknown_check_level_runs_the_next_lower_depth(level, depth, service):
    params = fakes(service)
    assert service.agent("api-pe", "start", **params).rc == OCF_SUCCESS
    service.fake("depth-ctl", f'echo "$*" > {service.base}/depth; echo ok\n')
    res = service.agent("api-pe", "monitor", env={"OCF_CHECK_LEVEL": level}, ctl="depth-ctl")
    assert res.rc == OCF_SUCCESS, res
    seen = (service.base / "depth").read_text() if (service.base / "depth").exists() else ""
    assert (f"--depth {depth}" in seen) if depth != "0" else seen == ""
