"""Datasource drivers without a DSD: config checks, rows, polling resilience."""

import threading

import pytest

from congress_ha.datasources.base import Driver, DriverError
from congress_ha.datasources.push import PushDriver
from congress_ha.datasources.registry import driver_info, validate_config
from congress_ha.errors import InvalidInput


def test_a_failing_poll_round_does_not_end_polling():
    calls = []
    done = threading.Event()

    def poll():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("broker down")  # what a publish can raise
        done.set()

    d = Driver("ds", {}, lambda *_: None)
    d._every(0.01, poll, "test")
    try:
        assert done.wait(5), "polling stopped after the first failure"
        assert "broker down" in d.last_error
    finally:
        d.stop()


def test_push_rows_are_normalised_by_column_and_bad_rows_are_named():
    d = PushDriver("inbox", {"tables": {"alarm": ["host", "kind"]}}, lambda *_: None)
    assert d.normalize("alarm", [["a", "disk"], {"kind": "cpu", "host": "b"}]) == [
        ("a", "disk"), ("b", "cpu")]
    with pytest.raises(DriverError, match="row 1"):
        d.normalize("alarm", [["a", "disk"], ["b"]])
    with pytest.raises(DriverError, match="no table 'nope'"):
        d.normalize("nope", [])


@pytest.mark.parametrize("driver, config, words", [
    ("push", {}, "needs config 'tables'"),
    ("push", {"tables": {"t": []}}, "non-empty list"),
    ("file", {}, "action_log"),
    ("ticker", {"rate": "fast"}, "must be numbers"),
    ("nosuch", {}, "unknown driver"),
])
def test_bad_driver_config_is_refused_with_the_reason(driver, config, words):
    with pytest.raises(InvalidInput, match=words):
        validate_config("ds", driver, config)


def test_driver_info_lists_tables_and_actions():
    info = driver_info("push", {"tables": {"alarm": ["x"]}})
    assert info["tables"] == {"alarm": ["x"]} and info["actions"] == []
    assert driver_info("file")["actions"] is None  # any action
