"""GET /metrics against a fake Service: Prometheus text, the process view read at each
scrape, request latency by route template, and the API's auth unless metrics_open."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from congress_ha.api.app import create_app
from congress_ha.metrics import DsdView, Metrics, PeView, ProcessView
from tests.api.fake_service import FakeService


def settings(strategy: str = "noauth", token_file: str | None = None, **api):
    return SimpleNamespace(api=SimpleNamespace(auth_strategy=strategy,
                                               token_file=token_file, **api))


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class Process:
    """Stands for the server's metrics_view(): an all-in-one process whose DSD has
    executed ``executed`` actions."""

    def __init__(self):
        self.executed = 0

    def view(self) -> ProcessView:
        dsd = DsdView(True, {"first_ready_pe": 1, "goodbye": 0}, {"executed": self.executed},
                      0, 0, 0.25, 1, {"in": 3})
        return ProcessView("all", True, {"api": True}, {"forged": 0}, dsd,
                           PeView({"in": 3}, {"in": 0}, {"in": True}))


@pytest.fixture
def process() -> Process:
    return Process()


@pytest.fixture
def client(process):
    return create_app(FakeService(), settings(), metrics=Metrics(process.view)).test_client()


def test_metrics_is_prometheus_text_of_the_process_view(client, process):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(resp.get_data(as_text=True))
    assert got[("congress_ha_ready", (("role", "all"),))] == 1
    assert got[("congress_ha_leader_changes_total", (("reason", "first_ready_pe"),))] == 1
    assert got[("congress_ha_actions_total", (("outcome", "executed"),))] == 0
    assert got[("congress_ha_pe_table_lag", (("datasource", "in"),))] == 0
    process.executed = 4
    got = samples(client.get("/metrics").get_data(as_text=True))
    assert got[("congress_ha_actions_total", (("outcome", "executed"),))] == 4


def test_request_latency_is_labelled_by_route_template_never_by_path(client):
    assert client.post("/v1/policies", json={"name": "p1"}).status_code == 201
    for name in ("p1", "nope", "also-nope"):
        client.get(f"/v1/policies/{name}")
    client.get("/v1/no/such/thing")
    client.open("/v1/policies", method="BREW")
    got = samples(client.get("/metrics").get_data(as_text=True))
    count = "congress_ha_api_request_duration_seconds_count"
    assert got[(count, (("method", "GET"), ("route", "/v1/policies/{policy}")))] == 3
    assert got[(count, (("method", "POST"), ("route", "/v1/policies")))] == 1
    assert got[(count, (("method", "GET"), ("route", "other")))] == 1
    assert got[(count, (("method", "other"), ("route", "other")))] == 1
    routes = {dict(labels)["route"] for name, labels in got if name == count}
    assert not [r for r in routes if "p1" in r or "nope" in r]


def test_metrics_needs_the_token_like_the_api_by_default(tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    client = create_app(FakeService(), settings("token", str(path))).test_client()
    assert client.get("/metrics").status_code == 401
    resp = client.get("/metrics", headers={"X-Auth-Token": "s3cret"})
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    # the refused scrape is timed too, under the route's template
    got = samples(resp.get_data(as_text=True))
    assert got[("congress_ha_api_request_duration_seconds_count",
                (("method", "GET"), ("route", "/metrics")))] == 1


def test_metrics_open_lets_a_scraper_in_without_a_token_and_only_there(tmp_path):
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    client = create_app(FakeService(), settings("token", str(path), metrics_open=True)
                        ).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/policies").status_code == 401
    assert client.get("/v1/ha/status").status_code == 401


def test_openapi_documents_metrics_as_text(client):
    doc = client.get("/v1/openapi.json").get_json()
    ok = doc["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/plain"]
