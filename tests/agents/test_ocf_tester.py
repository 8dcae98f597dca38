"""ocf-tester against a real service: both agents, a private RabbitMQ, and the
datasources role running beside api-pe (api-pe's depth 20 needs a live DSD)."""

from __future__ import annotations

import subprocess

import pytest

from tests.agents.conftest import OCF_NOT_RUNNING, OCF_ROOT, OCF_SUCCESS, need
from tests.support.procs import wait_for

pytestmark = pytest.mark.integration


def ocf_tester(service, role: str, depth: int) -> subprocess.CompletedProcess:
    tester = need("ocf-tester")
    opts = []
    for key, value in service.params(role).items():
        opts += ["-o", f"{key}={value}"]
    env = {k: v for k, v in service.env(role).items() if not k.startswith("OCF_RESKEY_")}
    # ocf-tester passes its environment on: every monitor it runs is at `depth`.
    env.update({"OCF_ROOT": OCF_ROOT, "OCF_CHECK_LEVEL": str(depth)})
    return subprocess.run([tester, "-n", f"congress-{role}", *opts,
                           str(service.agents / role)],
                          env=env, capture_output=True, text=True, timeout=120)


def test_ocf_tester_passes_for_datasources_at_depth_10(live_service):
    # No cluster runs here, so the real attrd_updater fails on every monitor
    # at depth 10 and on stop: that is logged, and must not fail an action.
    need("attrd_updater")
    out = ocf_tester(live_service, "datasources", 10)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed all tests" in out.stdout, out.stdout
    assert live_service.pid("datasources") is None  # the last stop removed it


def test_ocf_tester_passes_for_api_pe_at_depth_10_beside_a_dsd(live_service):
    dsd = live_service.agent("datasources", "start")
    assert dsd.rc == OCF_SUCCESS, dsd
    out = ocf_tester(live_service, "api-pe", 10)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed all tests" in out.stdout, out.stdout
    assert live_service.pid("api-pe") is None


def test_api_pe_depth_20_and_the_leader_attribute(live_service):
    calls = live_service.base / "attrd.calls"
    live_service.fake("attrd_updater", f'echo "$*" >> {calls}\n')
    assert live_service.agent("datasources", "start").rc == OCF_SUCCESS
    res = live_service.agent("api-pe", "start")
    assert res.rc == OCF_SUCCESS, res
    wait_for(lambda: live_service.agent("api-pe", "monitor", depth=20).rc == OCF_SUCCESS,
             30, "api-pe healthy at depth 20")
    assert live_service.agent("datasources", "monitor", depth=20).rc == OCF_SUCCESS

    leader = f"{live_service.node}:api-pe"

    def published() -> bool:
        assert live_service.agent("datasources", "monitor", depth=10).rc == OCF_SUCCESS
        lines = calls.read_text().splitlines() if calls.exists() else []
        return bool(lines) and lines[-1] == f"-n congress-dsd-leader -U {leader}"

    wait_for(published, 20, f"congress-dsd-leader = {leader}", interval=0.2)
    # Depth 0 stays cheap: it never asks ctl, so it never publishes.
    before = calls.read_text()
    assert live_service.agent("datasources", "monitor", depth=0).rc == OCF_SUCCESS
    assert calls.read_text() == before

    assert live_service.agent("datasources", "stop").rc == OCF_SUCCESS
    assert calls.read_text().splitlines()[-1] == "-n congress-dsd-leader -D"
    assert live_service.agent("datasources", "monitor").rc == OCF_NOT_RUNNING
