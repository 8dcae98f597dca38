"""congress_ha.metrics: a process view becomes Prometheus text that parses back to
the same names, labels and values; each process has a registry of its own."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from congress_ha.metrics import DsdView, Metrics, PeView, ProcessView


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, for every sample of the text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def types(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


DSD = DsdView(leader_present=True,
              leader_changes={"first_ready_pe": 1, "next_ready_pe": 0, "goodbye": 2,
                              "silent": 0, "new_incarnation": 0},
              actions={"executed": 7, "skipped_by_journal": 1, "failed": 0},
              shadow_log=3, shadow_dropped=0, action_gap=1.5, journal_rows=8,
              seqs={"in": 4, "builtin": 9})


def view(**kw) -> ProcessView:
    base = dict(role="datasources", ready=True,
                threads={"heartbeat": True, "executor": False},
                bus_refusals={"forged": 2, "stale": 0}, dsd=DSD)
    base.update(kw)
    return ProcessView(**base)


def test_a_dsd_view_reads_back_with_its_names_labels_and_values():
    text = Metrics(lambda: view()).text()
    got = samples(text)
    assert got[("congress_ha_ready", (("role", "datasources"),))] == 1
    assert got[("congress_ha_thread_up", (("thread", "heartbeat"),))] == 1
    assert got[("congress_ha_thread_up", (("thread", "executor"),))] == 0
    assert got[("congress_ha_bus_refusals_total", (("kind", "forged"),))] == 2
    assert got[("congress_ha_leader_changes_total", (("reason", "goodbye"),))] == 2
    assert got[("congress_ha_leader_changes_total", (("reason", "first_ready_pe"),))] == 1
    assert got[("congress_ha_leader_present", ())] == 1
    assert got[("congress_ha_actions_total", (("outcome", "executed"),))] == 7
    assert got[("congress_ha_actions_total", (("outcome", "skipped_by_journal"),))] == 1
    assert got[("congress_ha_action_gap_seconds", ())] == 1.5
    assert got[("congress_ha_shadow_log_entries", ())] == 3
    assert got[("congress_ha_shadow_log_dropped_total", ())] == 0
    assert got[("congress_ha_journal_rows", ())] == 8
    assert got[("congress_ha_dsd_table_seq", (("datasource", "in"),))] == 4
    t = types(text)
    assert t["congress_ha_leader_changes"] == "counter" and t["congress_ha_ready"] == "gauge"
    assert t["congress_ha_engine_evaluation_seconds"] == "histogram"
    assert not [n for n in t if n.startswith("congress_ha_pe_")], "no PE in a DSD process"
    assert all(n.startswith("congress_ha_") for n in t)


def test_what_is_not_known_yet_is_left_out_not_shown_as_zero():
    quiet = DsdView(**{**vars(DSD), "action_gap": None, "journal_rows": None})
    names = types(Metrics(lambda: view(dsd=quiet)).text())
    assert "congress_ha_action_gap_seconds" not in names
    assert "congress_ha_journal_rows" not in names
    assert "congress_ha_leader_changes" in names


def test_a_pe_view_has_seq_lag_and_synced_per_datasource_and_no_dsd_metrics():
    pe = PeView(seqs={"in": 4, "builtin": 8}, lags={"in": 0, "builtin": 1},
                synced={"in": True, "builtin": False})
    text = Metrics(lambda: view(role="api-pe", dsd=None, pe=pe)).text()
    got = samples(text)
    assert got[("congress_ha_pe_table_seq", (("datasource", "builtin"),))] == 8
    assert got[("congress_ha_pe_table_lag", (("datasource", "builtin"),))] == 1
    assert got[("congress_ha_pe_table_synced", (("datasource", "builtin"),))] == 0
    assert got[("congress_ha_ready", (("role", "api-pe"),))] == 1
    assert "congress_ha_leader_changes" not in types(text)


def test_the_view_is_read_at_each_scrape():
    state = {"executed": 1}

    def live() -> ProcessView:
        return view(dsd=DsdView(**{**vars(DSD), "actions": {"executed": state["executed"]}}))

    m = Metrics(live)
    key = ("congress_ha_actions_total", (("outcome", "executed"),))
    assert samples(m.text())[key] == 1
    state["executed"] = 5
    assert samples(m.text())[key] == 5


def test_histograms_take_the_route_template_and_a_bounded_method():
    m = Metrics()
    m.observe_request("GET", "/v1/policies/{policy}", 0.003)
    m.observe_request("BREW", "other", 0.2)
    m.evaluation_seconds.observe(0.0002)
    got = samples(m.text())
    assert got[("congress_ha_api_request_duration_seconds_count",
                (("method", "GET"), ("route", "/v1/policies/{policy}")))] == 1
    assert got[("congress_ha_api_request_duration_seconds_bucket",
                (("le", "0.005"), ("method", "GET"), ("route", "/v1/policies/{policy}")))] == 1
    assert got[("congress_ha_api_request_duration_seconds_count",
                (("method", "other"), ("route", "other")))] == 1
    assert got[("congress_ha_engine_evaluation_seconds_count", ())] == 1
    assert got[("congress_ha_engine_evaluation_seconds_bucket", (("le", "0.00025"),))] == 1


def test_each_process_has_its_own_registry_never_the_global_one():
    a, b = Metrics(), Metrics()  # the global registry would refuse the second
    a.evaluation_seconds.observe(1.0)
    assert samples(b.text())[("congress_ha_engine_evaluation_seconds_count", ())] == 0
    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("congress_ha")]
