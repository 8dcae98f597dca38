"""Across nodes, a policy write is read everywhere within a documented bound
(docs/language.md, "Consistency of reads"): a broadcast away, or at most one
POLICY_POLL when the broadcast is missed."""

from __future__ import annotations

from congress_ha.roles.policy_engine import POLICY_POLL
from congress_ha.store.db import open_engine, session_factory
from congress_ha.store.policies import PolicyStore
from tests.support.http import request
from tests.support.procs import Cluster, wait_for
from tests.support.visibility import measure

# The bound this test holds the cluster to: one poll, plus the time a loaded
# 2-core machine may take to apply a revision and answer (not a benchmark:
# `make bench` measures the distribution).
BOUND = POLICY_POLL + 8.0


def test_a_write_on_one_pe_is_read_on_the_others_within_the_bound(broker, tmp_path):
    c = Cluster(tmp_path, broker.url)
    pes = [c.add_pe("pe1"), c.add_pe("pe2"), c.add_pe("pe3")]
    try:
        for p in pes:
            p.start()
        wait_for(lambda: all(p.healthy("api-pe", 10) for p in pes), 60, "the PEs ready")
        writer, readers = pes[0].api_port, [p.api_port for p in pes[1:]]
        assert request(writer, "POST", "/v1/policies", {"name": "spread"})[0] == 201
        through_api = measure(writer, readers, "spread", 15, BOUND)
        # A write whose broadcast never comes (another node's write, lost):
        # every PE, the writer's own node included, finds it by polling.
        store = PolicyStore(session_factory(open_engine(c.db_url)))
        missed = measure(writer, [writer, *readers], "spread", 3, BOUND, store=store)
        assert len(through_api) == 15 and len(missed) == 3
        print(f"visible on 2 other PEs: max {max(through_api) * 1000:.0f} ms; "
              f"without the broadcast: max {max(missed) * 1000:.0f} ms")
    finally:
        c.stop_all()
