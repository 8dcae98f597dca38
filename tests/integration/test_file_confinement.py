"""A real DSD keeps its file datasources inside [drivers] file_allowed_dirs.

The DSD's own check is the authority: a datasource stored without the API's
check (another API node's config, a database from before the option) is
refused where it would run, its status says why, and the others run on.
"""

from __future__ import annotations

import json

import pytest

from tests.support.http import request
from tests.support.procs import wait_for

pytestmark = pytest.mark.integration


def test_the_dsd_refuses_a_stored_file_datasource_outside_and_runs_the_one_inside(
        cluster, tmp_path):
    from congress_ha.store.datasources import add_datasource
    from congress_ha.store.db import open_engine, session_factory

    outside = tmp_path / "outside"  # not under cluster.base, the allowed folder
    outside.mkdir()
    (outside / "rows.json").write_text(json.dumps({"secret": [["root-password"]]}))
    sessions = session_factory(open_engine(cluster.db_url))
    add_datasource(sessions, "stolen", "file", {"path": str(outside / "rows.json"),
                                                "action_log": str(cluster.base / "s.log")})
    dsd = cluster.add_dsd("dsd1").start()
    pe = cluster.add_pe("pe1").start()
    wait_for(lambda: pe.healthy("api-pe", 10) and dsd.healthy("datasources", 10), 40,
             "the PE and the DSD up")

    def status():
        return request(pe.api_port, "GET", "/v1/data-sources/stolen/status", timeout=10)

    wait_for(lambda: status()[0] == 200 and status()[1].get("last_error"), 30,
             "the DSD to report the refused datasource")
    code, body = status()
    error = body["last_error"]
    for words in ("datasource stolen", f"'path' {outside / 'rows.json'}",
                  "outside the folders", "[drivers] file_allowed_dirs", str(cluster.base),
                  "add its folder"):
        assert words in error, error
    assert not body["initialized"], body
    # Not ready while a datasource is refused, and the health line says why.
    health = dsd.ctl("health", "--role", "datasources", "--depth", "20")
    assert health.returncode != 0 and "stolen" in health.stdout, health.stdout
    # The file datasource inside (its action log in cluster.base) runs its actions.
    wait_for(lambda: len(cluster.actions()) >= 5, 30, "actions in the log inside")
    code, body = request(pe.api_port, "GET", "/v1/data-sources/stolen/tables/secret/rows",
                         timeout=10)
    assert code == 404 or body.get("results") == [], body
    assert "root-password" not in dsd.logtext()  # never read, so never logged either
    # The API refuses the same config up front.
    code, body = request(pe.api_port, "POST", "/v1/data-sources", {
        "name": "stolen2", "driver": "file",
        "config": {"path": str(outside / "rows.json"),
                   "action_log": str(cluster.base / "s2.log")}}, timeout=10)
    assert code == 400 and "file_allowed_dirs" in body["error"]["message"], body
