"""now(x) over a real broker: the DSD publishes one clock, every PE evaluates
now to the same value, and actions derived from it are requested once."""

from __future__ import annotations

import calendar
import time

from congress_ha.datasources.clock import clock_value
from tests.support.http import request
from tests.support.procs import Cluster, wait_for


def test_every_pe_sees_the_one_clock_the_dsd_publishes(broker, tmp_path):
    c = Cluster(tmp_path, broker.url, extra="[engine]\nnow_resolution = 2\n")
    pes = [c.add_pe("pe1"), c.add_pe("pe2")]
    dsd = c.add_dsd("dsd")
    try:
        for p in (*pes, dsd):
            p.start()
        wait_for(lambda: all(p.healthy("api-pe", 20) for p in pes)
                 and dsd.healthy("datasources", 20), 60, "the cluster ready")

        def api(p, method, path, body=None):
            return request(p.api_port, method, path, body, timeout=30)

        status, body = api(pes[0], "POST", "/v1/data-sources",
                           {"name": "builtin", "driver": "clock", "config": {}})
        assert status == 400 and "reserved" in body["error"]["message"], body
        assert api(pes[0], "POST", "/v1/policies", {"name": "timed"})[0] == 201
        assert api(pes[0], "POST", "/v1/policies/timed/rules",
                   {"rule": "stamp(t) :- now(t)"})[0] == 201
        assert api(pes[1], "POST", "/v1/policies/timed/rules",
                   {"rule": "recent(t) :- now(t), datetime_gt(t, \"Jan 1, 2026\")"})[0] == 201

        def stamps(p):
            status, body = api(p, "GET", "/v1/policies/timed/tables/stamp/rows")
            assert status == 200, body
            return [r["data"] for r in body["results"]]

        # The clock moves (resolution 2 s), and both PEs follow it to one value.
        seen: set[str] = set()

        def moved_and_agreed() -> bool:
            a, b = stamps(pes[0]), stamps(pes[1])
            assert len(a) <= 1 and len(b) <= 1, (a, b)  # one row, never two
            if a and a == b:
                seen.add(a[0][0])
            return len(seen) >= 2

        wait_for(moved_and_agreed, 30, "the clock to move twice, the same on both PEs",
                 interval=0.2)
        for value in seen:
            # Congress's format, a UTC time of this run, on the resolution grid.
            t = calendar.timegm(time.strptime(value, "%Y-%m-%d %H:%M:%S"))
            assert value == clock_value(t, 2) and abs(t - time.time()) < 60, value
        status, body = api(pes[1], "GET", "/v1/policies/timed/tables/recent/rows")
        assert status == 200 and len(body["results"]) == 1, body
    finally:
        c.stop_all()
