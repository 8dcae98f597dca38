"""POST /v1/data-sources with a file datasource outside [drivers] file_allowed_dirs:
a 400 that says why and how to fix it, and nothing stored (a real server)."""

from __future__ import annotations

import pytest

from tests.support.http import request


def base_of(solo):
    return solo.conf.parent.parent  # the server's [drivers] file_allowed_dirs


def names(solo) -> set[str]:
    status, body = request(solo.api_port, "GET", "/v1/data-sources", timeout=10)
    assert status == 200, body
    return {d["name"] for d in body["results"]}


@pytest.mark.parametrize("key, path", [
    ("action_log", "/etc/cron.d/congress"),
    ("path", "/etc/shadow.csv"),
    ("action_log", "{base}/../elsewhere/a.log"),
])
def test_a_file_datasource_outside_the_allowed_folders_is_a_400_and_is_not_stored(
        solo, key, path):
    path = path.format(base=base_of(solo))
    config = {"action_log": str(base_of(solo) / "a.log"), key: path}
    status, body = request(solo.api_port, "POST", "/v1/data-sources",
                           {"name": "outside", "driver": "file", "config": config},
                           timeout=10)
    assert status == 400, body
    message = body["error"]["message"]
    for words in ("datasource outside", f"'{key}' {path}", "[drivers] file_allowed_dirs",
                  str(base_of(solo)), "add its folder"):
        assert words in message, message
    assert "outside" not in names(solo)


def test_a_file_datasource_inside_is_created(solo):
    config = {"action_log": str(base_of(solo) / "inside.jsonl")}
    status, body = request(solo.api_port, "POST", "/v1/data-sources",
                           {"name": "inside", "driver": "file", "config": config},
                           timeout=10)
    assert status == 201, body
    assert "inside" in names(solo)
