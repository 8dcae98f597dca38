"""2 api-pe + 1 DSD on a private broker and PostgreSQL: policies across nodes.

Rules go in through one node's REST API and answer on the other; concurrent
conflicting rules are never both accepted; pushed rows reach execute[] rules
and the file driver logs each action exactly once.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from tests.support.http import request
from tests.support.postgres import Postgres
from tests.support.procs import Cluster, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres(prefix="chit")
    try:
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture(scope="module")
def pgcluster(broker, postgres):
    base = Path(tempfile.mkdtemp(prefix="chit-pg-"))
    c = Cluster(base, broker.url, db_url=postgres.url)
    c.seed_datasources(rate=5, window=20)
    dsd = c.add_dsd("dsd").start()
    a = c.add_pe("a").start()
    b = c.add_pe("b").start()
    try:
        wait_for(lambda: a.healthy("api-pe", 20) and b.healthy("api-pe", 20), 60,
                 "both api-pe nodes ready")
        wait_for(lambda: dsd.healthy("datasources", 20), 30, "the DSD ready")
        yield c, a, b
    finally:
        c.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def rows(node, path):
    status, body = request(node.api_port, "GET", path)
    return status, sorted(tuple(r["data"]) for r in body.get("results", [])) \
        if status == 200 else body


def test_a_rule_added_through_one_node_answers_on_the_other(pgcluster):
    _, a, b = pgcluster
    status, _ = request(a.api_port, "POST", "/v1/policies", {"name": "sync1"})
    assert status == 201
    for rule in ('q(1)', 'q(2)', 'p(x) :- q(x)'):
        status, body = request(a.api_port, "POST", "/v1/policies/sync1/rules", {"rule": rule})
        assert status == 201, body
    wait_for(lambda: rows(b, "/v1/policies/sync1/tables/p/rows") == (200, [(1,), (2,)]), 10,
             "the rule's rows on node b")


def test_a_pe_that_missed_the_broadcast_catches_up_by_polling(pgcluster):
    c, a, b = pgcluster
    from congress_ha.store.db import open_engine, session_factory
    from congress_ha.store.policies import PolicyStore

    # Written straight to the database: no node broadcasts this change.
    store = PolicyStore(session_factory(open_engine(c.db_url)))
    store.create_policy(store.revision(), "quiet", "", "", "nonrecursive",
                        rules=[("r(7)", "", "")])
    for node in (a, b):
        wait_for(lambda n=node: rows(n, "/v1/policies/quiet/tables/r/rows") == (200, [(7,)]),
                 15, f"node {node.name} to poll the new revision")


def test_conflicting_rules_sent_at_once_are_never_both_accepted(pgcluster):
    _, a, b = pgcluster
    for i in range(6):
        policy = f"race{i}"
        assert request(a.api_port, "POST", "/v1/policies", {"name": policy})[0] == 201
        wait_for(lambda p=policy: request(b.api_port, "GET", f"/v1/policies/{p}")[0] == 200,
                 10, "the policy on node b")
        results = {}
        barrier = threading.Barrier(2)

        def send(node, rule, key, p=policy, barrier=barrier, results=results):
            barrier.wait()
            results[key] = request(node.api_port, "POST", f"/v1/policies/{p}/rules",
                                   {"rule": rule})

        threads = [threading.Thread(target=send, args=(a, "p(x) :- q(x)", "a")),
                   threading.Thread(target=send, args=(b, "q(x) :- p(x)", "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = sorted(results[k][0] for k in ("a", "b"))
        assert codes == [201, 400], results
        loser = [r for r in results.values() if r[0] == 400][0]
        assert "recursive" in str(loser[1]).lower()
        for node in (a, b):
            wait_for(lambda n=node, p=policy: len(request(n.api_port, "GET",
                                                          f"/v1/policies/{p}/rules")[1]
                                                  ["results"]) == 1,
                     10, "exactly one rule stored and loaded")


def test_pushed_rows_fire_execute_rules_and_each_action_runs_once(pgcluster):
    c, a, b = pgcluster
    status, body = request(a.api_port, "POST", "/v1/data-sources",
                           {"name": "inbox", "driver": "push",
                            "config": {"tables": {"alarm": ["x"]}}})
    assert status == 201, body
    status, body = request(a.api_port, "POST", "/v1/policies/classification/rules",
                           {"rule": "execute[out:log(x)] :- inbox:alarm(x)"})
    assert status == 201, body
    wait_for(lambda: request(b.api_port, "GET", "/v1/data-sources/inbox/tables")[0] == 200
             and "alarm" in str(request(b.api_port, "GET",
                                        "/v1/data-sources/inbox/tables")[1]),
             20, "the push datasource's table on node b")

    def logged(value):
        return [x for x in c.actions() if x["args"] == [value]]

    assert request(b.api_port, "PUT", "/v1/data-sources/inbox/tables/alarm/rows",
                   [["disk"]])[0] in (200, 204)
    wait_for(lambda: logged("disk"), 20, "the action for disk")
    assert request(a.api_port, "PUT", "/v1/data-sources/inbox/tables/alarm/rows",
                   [["disk"], {"x": "cpu"}])[0] in (200, 204)
    wait_for(lambda: logged("cpu"), 20, "the action for cpu")
    assert len(logged("disk")) == 1 and len(logged("cpu")) == 1
    # pushed rows are visible on both nodes, from the replica
    for node in (a, b):
        wait_for(lambda n=node: rows(n, "/v1/data-sources/inbox/tables/alarm/rows")
                 == (200, [("cpu",), ("disk",)]), 10, "pushed rows on every node")
