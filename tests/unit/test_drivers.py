"""Datasource drivers without a DSD: config checks, rows, polling resilience."""

import threading

import pytest

from congress_ha.datasources.base import Driver, DriverError, DriverSettings
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


CONFIGS = {"clock": {"resolution": 1}, "push": {"tables": {"t": ["a"]}},
           "ticker": {"rate": 5},
           # Inside the default [drivers] file_allowed_dirs; they need not exist.
           "file": {"path": "/var/lib/congress-ha/files/rows.json",
                    "action_log": "/var/lib/congress-ha/files/a.log"}}


def test_every_driver_is_covered_here():
    from congress_ha.datasources.registry import DRIVERS

    assert sorted(DRIVERS) == sorted(CONFIGS)


@pytest.mark.parametrize("driver", sorted(CONFIGS))
def test_a_drivers_constructor_does_no_io(driver, monkeypatch):
    import builtins
    import os
    import pathlib

    from congress_ha.datasources.registry import make_driver

    def no_io(*args, **kwargs):
        raise AssertionError("I/O in a driver's constructor")

    for owner, name in ((builtins, "open"), (os, "open"), (os, "stat"), (os, "scandir"),
                        (pathlib.Path, "stat"), (pathlib.Path, "iterdir")):
        monkeypatch.setattr(owner, name, no_io)
    make_driver("ds", driver, CONFIGS[driver], lambda *_: None)


def test_the_file_driver_reads_at_start_and_a_fifo_is_still_refused_at_creation(tmp_path):
    import os

    from congress_ha.datasources.file import FileDriver

    fifo = tmp_path / "rows.json"
    os.mkfifo(fifo)
    config = {"path": str(fifo), "action_log": str(tmp_path / "a.log")}
    allow = DriverSettings(file_allowed_dirs=(str(tmp_path),))
    driver = FileDriver("files", config, lambda *_: None, allow)   # never opens the FIFO
    assert driver.schema() == {}
    with pytest.raises(InvalidInput, match="not a regular file"):
        validate_config("files", "file", config, allow)
    with pytest.raises(DriverError, match="not a regular file"):
        driver.start()
    fifo.unlink()
    fifo.write_text('{"t": [[1, 2]]}')
    published = []
    driver = FileDriver("files", config, lambda t, rows: published.append((t, rows)), allow)
    assert validate_config("files", "file", config, allow) == {"t": ["col0", "col1"]}
    assert published == [] and driver.schema() == {}
    driver.start()
    try:
        assert driver.schema() == {"t": ["col0", "col1"]} and published == [("t", [(1, 2)])]
    finally:
        driver.stop()


def test_drivers_declare_what_they_do():
    from congress_ha.datasources.registry import make_driver

    def caps(driver, config):
        d = make_driver("ds", driver, config, lambda *_: None)
        return d.polls, d.accepts_push, d.persists_rows, d.actions

    assert caps("push", CONFIGS["push"]) == (False, True, True, [])
    assert caps("file", CONFIGS["file"]) == (True, False, False, None)
    assert caps("file", {"action_log": CONFIGS["file"]["action_log"]}) == (
        False, False, False, None)
    assert caps("clock", CONFIGS["clock"]) == (True, False, False, [])
    assert caps("ticker", CONFIGS["ticker"]) == (False, False, False, [])
    with pytest.raises(DriverError, match="does not accept pushed rows"):
        make_driver("ds", "ticker", CONFIGS["ticker"], lambda *_: None).normalize("tick", [])


def test_pushed_rows_are_restored_before_start():
    published = []
    d = PushDriver("inbox", {"tables": {"alarm": ["host"], "other": ["x"]}},
                   lambda t, rows: published.append((t, rows)))
    d.restore({"alarm": ([["web1"]], 3)})
    d.start()
    assert sorted(published) == [("alarm", [("web1",)]), ("other", [])]


def test_the_file_driver_follows_no_link_and_writes_only_into_a_regular_file(tmp_path):
    """A link to a secret is not read, a link or a FIFO as the action log is not
    written (issue 13): the names in a datasource config are taken literally."""
    import os

    from congress_ha.datasources.base import ActionContext, DriverError
    from congress_ha.datasources.file import FileDriver

    secret = tmp_path / "secret.json"
    secret.write_text('{"t": [[1]]}')
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.json").symlink_to(secret)
    allow = DriverSettings(file_allowed_dirs=(str(tmp_path),))
    driver = FileDriver("f", {"path": str(data), "action_log": str(tmp_path / "a.log")},
                        lambda *_: None, allow)
    with pytest.raises(DriverError, match="is a symbolic link"):
        driver.probe()
    log_link = tmp_path / "log-link"
    log_link.symlink_to(tmp_path / "elsewhere.log")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    ctx = ActionContext("a1", "pe1", "leader")
    for target in (log_link, fifo):
        d = FileDriver("f", {"action_log": str(target)}, lambda *_: None, allow)
        with pytest.raises(DriverError):
            d.execute("log", [1], ctx)
    assert not (tmp_path / "elsewhere.log").exists()
