"""GET /readyz, the load balancer's check: 200 only while the PE can answer from
complete data (a live DSD, every snapshot, the current policies), else 503."""

from __future__ import annotations

import signal

from tests.support.http import request
from tests.support.procs import Cluster, wait_for


def test_readyz_follows_the_dsd_that_feeds_the_pe(broker, tmp_path):
    c = Cluster(tmp_path, broker.url)
    pe = c.add_pe("pe1").start()
    try:
        wait_for(lambda: pe.healthy("api-pe", 10), 60, "the PE up")
        assert request(pe.api_port, "GET", "/readyz") == (503, {"ready": False})
        assert request(pe.api_port, "GET", "/healthz")[0] == 200  # alive, not ready
        dsd = c.add_dsd("dsd").start()
        wait_for(lambda: request(pe.api_port, "GET", "/readyz") == (200, {"ready": True}),
                 60, "ready once a DSD feeds it")
        # A DSD lost (a failover): the PE keeps what it had and stays in the
        # load balancer (health depth 20 says not ready meanwhile).
        dsd.signal(signal.SIGKILL)
        wait_for(lambda: not pe.healthy("api-pe", 20), 30, "the DSD's loss seen")
        assert request(pe.api_port, "GET", "/readyz") == (200, {"ready": True})
        # A new DSD: the PE resyncs and is ready by depth 20 again.
        c.add_dsd("dsd2").start()
        wait_for(lambda: pe.healthy("api-pe", 20), 60, "the new DSD synced")
        assert request(pe.api_port, "GET", "/readyz") == (200, {"ready": True})
    finally:
        c.stop_all()
