"""Metrics of real processes over a private RabbitMQ: a PE's GET /metrics and the
DSD's `congress-ha-ctl metrics` show the actions that ran and each leader change
with its cause, as `congress-ha-ctl leader` tells them."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import request
from tests.support.procs import Cluster, Proc, wait_for

EXECUTED = ("congress_ha_actions_total", (("outcome", "executed"),))


def changes(reason: str) -> tuple[str, tuple]:
    return "congress_ha_leader_changes_total", (("reason", reason),)


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def api_metrics(pe: Proc) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{pe.api_port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(r.read().decode())


def dsd_metrics(dsd: Proc) -> dict[tuple[str, tuple], float]:
    r = dsd.ctl("metrics")
    assert r.returncode == 0, r.stderr
    return parse(r.stdout)


def leader_of(dsd: Proc) -> dict:
    r = dsd.ctl("leader", "--json")
    return json.loads(r.stdout)["dsds"][0] if r.returncode == 0 else {}


def seed(c: Cluster) -> None:
    """`execute[out:log(x)] :- in:alarm(x)`: one action per alarm pushed."""
    from congress_ha.store.datasources import add_datasource
    from congress_ha.store.db import open_engine, session_factory
    from congress_ha.store.policies import PolicyStore

    sessions = session_factory(open_engine(c.db_url))
    add_datasource(sessions, "in", "push", {"tables": {"alarm": ["x"]}})
    add_datasource(sessions, "out", "file", {"action_log": str(c.action_log)})
    store = PolicyStore(sessions)
    store.create_policy(store.revision(), "alarms", "", "alarms to actions", "nonrecursive",
                        rules=[("execute[out:log(x)] :- in:alarm(x)", "log", "")])


def push(pe: Proc, rows: list) -> None:
    status, body = request(pe.api_port, "PUT", "/v1/data-sources/in/tables/alarm/rows", rows)
    assert status == 200, body


def test_metrics_show_the_executed_actions_and_each_leader_change_by_cause(broker, tmp_path):
    c = Cluster(tmp_path, broker.url)
    seed(c)
    dsd = c.add_dsd("dsd").start()
    pe1 = c.add_pe("pe1").start()
    try:
        wait_for(lambda: pe1.healthy("api-pe", 20), 60, "pe1 ready")
        wait_for(lambda: leader_of(dsd).get("leader") == "pe1:api-pe", 30, "pe1 the leader")
        pe2 = c.add_pe("pe2").start()
        wait_for(lambda: pe2.healthy("api-pe", 20), 60, "pe2 ready")

        push(pe1, [["disk"]])
        wait_for(lambda: len(c.actions()) == 1, 30, "the action run")
        got = wait_for(lambda: (m := dsd_metrics(dsd))[EXECUTED] == 1 and m, 10,
                       "the executed action counted")
        assert got[changes("first_ready_pe")] == 1
        assert sum(v for (n, _), v in got.items()
                   if n == "congress_ha_leader_changes_total") == 1
        assert got[("congress_ha_leader_present", ())] == 1
        assert got[("congress_ha_actions_total", (("outcome", "failed"),))] == 0
        assert got[("congress_ha_journal_rows", ())] == 1  # the first count: fresh
        assert 0 <= got[("congress_ha_action_gap_seconds", ())] < 30
        assert got[("congress_ha_shadow_log_entries", ())] == 0
        assert got[("congress_ha_ready", (("role", "datasources"),))] == 1
        threads = {dict(k[1])["thread"]: v for k, v in got.items()
                   if k[0] == "congress_ha_thread_up"}
        assert {"executor", "leader-tick", "heartbeat"} <= set(threads)
        assert set(threads.values()) == {1.0}
        dsd_seq = got[("congress_ha_dsd_table_seq", (("datasource", "in"),))]
        assert dsd_seq >= 1

        pe = wait_for(lambda: (m := api_metrics(pe1))[
            ("congress_ha_pe_table_lag", (("datasource", "in"),))] == 0 and m, 10,
            "pe1 level with the DSD")
        assert pe[("congress_ha_pe_table_seq", (("datasource", "in"),))] == dsd_seq
        assert pe[("congress_ha_pe_table_synced", (("datasource", "in"),))] == 1
        assert pe[("congress_ha_ready", (("role", "api-pe"),))] == 1
        assert pe[("congress_ha_api_request_duration_seconds_count",
                   (("method", "PUT"),
                    ("route", "/v1/data-sources/{datasource}/tables/{table}/rows")))] == 1
        assert pe[("congress_ha_engine_evaluation_seconds_count", ())] >= 1
        assert ("congress_ha_leader_changes_total", (("reason", "goodbye"),)) not in pe

        # The leader stops cleanly: its goodbye hands the leadership to pe2 at once.
        assert pe1.terminate() == 0
        wait_for(lambda: leader_of(dsd).get("leader") == "pe2:api-pe", 30, "pe2 the leader")
        push(pe2, [["disk"], ["cpu"]])
        wait_for(lambda: len(c.actions()) == 2, 30, "the second action run")
        got = wait_for(lambda: (m := dsd_metrics(dsd))[EXECUTED] == 2 and m, 10,
                       "both actions counted")
        assert got[changes("first_ready_pe")] == 1 and got[changes("goodbye")] == 1
        assert got[changes("silent")] == 0 and got[changes("next_ready_pe")] == 0
        leader = leader_of(dsd)
        assert leader["counters"]["leader_changes"] == 2
        assert [h["reason"] for h in leader["history"]] == ["first ready PE heard",
                                                          "leader lost (goodbye)"]
        assert [a["args"] for a in c.actions()] == [["disk"], ["cpu"]]
    finally:
        c.stop_all()
