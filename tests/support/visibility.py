"""How long a policy write on one PE takes to be read on another (issue 11).

The writer's node answers with its own write (read-your-writes); every other
PE applies it when the writer's ``policy_changed`` broadcast arrives, or at
its next poll (``POLICY_POLL``) if that broadcast was missed. ``measure``
writes rules and polls the other PEs until each answers with them; the
integration test asserts that every write becomes visible within the bound,
and ``make bench`` reports the distribution.
"""

from __future__ import annotations

import time
import uuid

from tests.support.http import request

POLL = 0.005  # seconds between reads of a PE that has not seen the write yet


def _visible(port: int, policy: str, rule_id: str) -> bool:
    status, _ = request(port, "GET", f"/v1/policies/{policy}/rules/{rule_id}", timeout=10)
    return status == 200


def measure(writer_port: int, reader_ports: list[int], policy: str, writes: int,
            deadline: float, store=None) -> list[float]:
    """Seconds from each write's answer until every reader answers with it.

    ``store``: write through the database instead (a PolicyStore), without the
    broadcast, as a writer whose broadcast was lost; then ``writer_port`` only
    names the node whose policy id is looked up.
    """
    status, body = request(writer_port, "GET", f"/v1/policies/{policy}", timeout=10)
    assert status == 200, body
    policy_id = body["id"]
    seen: list[float] = []
    for i in range(writes):
        if store is None:
            status, body = request(writer_port, "POST", f"/v1/policies/{policy}/rules",
                                   {"rule": f"seen{i}(1)"}, timeout=30)
            assert status == 201, body
            rule_id = body["id"]
        else:
            rule_id = str(uuid.uuid4())
            store.add_rule(store.revision(), policy_id, rule_id, f"direct{i}(1)", "", "")
        t0 = time.monotonic()
        pending = set(reader_ports)
        while pending:
            pending = {p for p in pending if not _visible(p, policy, rule_id)}
            if pending and time.monotonic() - t0 > deadline:
                raise AssertionError(f"write {i} ({rule_id}) not visible on the PEs at "
                                     f"ports {sorted(pending)} after {deadline} s")
            if pending:
                time.sleep(POLL)
        seen.append(time.monotonic() - t0)
    return seen
