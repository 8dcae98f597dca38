"""Monitor at depth 10 when the bus goes away: a failure (1), not "stopped".

Its own broker, since the test kills it."""

from __future__ import annotations

import pytest

from tests.agents.conftest import OCF_ERR_GENERIC, OCF_SUCCESS
from tests.support.broker import running_broker
from tests.support.procs import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def doomed_broker():
    with running_broker("chagdown") as b:
        yield b


def test_monitor_depth_10_fails_when_the_bus_is_down(request, agents, doomed_broker):
    from tests.agents.conftest import finish_service, make_service

    service = make_service(request, agents, doomed_broker.url)
    try:
        service.cluster.seed_datasources()
        assert service.agent("datasources", "start").rc == OCF_SUCCESS
        assert service.agent("datasources", "monitor", depth=10).rc == OCF_SUCCESS
        doomed_broker.kill()
        wait_for(lambda: service.agent("datasources", "monitor", depth=10).rc
                 == OCF_ERR_GENERIC, 15, "monitor depth 10 to report the bus down")
        res = service.agent("datasources", "monitor", depth=10)
        assert res.rc == OCF_ERR_GENERIC, res
        assert res.reason.startswith("failed:"), res.reason
        # Depth 0 only looks at the process, which still runs.
        assert service.agent("datasources", "monitor", depth=0).rc == OCF_SUCCESS
    finally:
        finish_service(request, service)
