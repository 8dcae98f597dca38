"""The file driver stays inside [drivers] file_allowed_dirs (datasources/confine.py).

Every case is an attack of issue 13 on a real file system: a path that climbs
out with '..', a folder or a file that is a link to elsewhere, a FIFO, a
device, a hard link, and a folder swapped for a link after the check.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from congress_ha.datasources import confine
from congress_ha.datasources.base import ActionContext, DriverError, DriverSettings
from congress_ha.datasources.file import FileDriver
from congress_ha.datasources.registry import validate_config
from congress_ha.errors import InvalidInput

CTX = ActionContext("a1", "pe1", "leader")


@pytest.fixture
def tree(tmp_path):
    """allowed/ (the one allowed folder) with data/t.json, and outside/ with a secret."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "data").mkdir(parents=True)
    outside.mkdir()
    (allowed / "data" / "t.json").write_text('{"t": [[1, 2]]}')
    (outside / "secret.json").write_text('{"secret": [["root-password"]]}')
    return allowed, outside


def driver(allowed, **config) -> FileDriver:
    config.setdefault("action_log", str(allowed / "actions.jsonl"))
    return FileDriver("files", config, lambda *_: None,
                      DriverSettings(file_allowed_dirs=(str(allowed),)))


def test_a_file_inside_is_read_and_actions_are_appended_as_json_data(tree, tmp_path):
    allowed, _ = tree
    d = driver(allowed, path=str(allowed / "data"))
    assert d.probe() == {"t": ["col0", "col1"]}
    marker = tmp_path / "pwned"
    hostile = [f"$(touch {marker})", f"`touch {marker}`", "; rm -rf /", "\n{\"x\": 1}"]
    d.execute("log", hostile, CTX)
    d.execute("log", [2], CTX)
    lines = (allowed / "actions.jsonl").read_text().splitlines()
    assert len(lines) == 2  # the newline in an argument is escaped, not a new line
    assert json.loads(lines[0])["args"] == hostile
    assert not marker.exists()
    assert stat.S_IMODE((allowed / "actions.jsonl").stat().st_mode) & 0o007 == 0


@pytest.mark.parametrize("key", ["path", "action_log"])
@pytest.mark.parametrize("where", ["outside/secret.json", "allowed/../outside/secret.json",
                                   "allowed/data/../../outside/secret.json",
                                   "allowedX/secret.json", "relative.json"])
def test_a_path_outside_is_refused_when_the_driver_is_built(tree, key, where):
    allowed, _ = tree
    path = where if where == "relative.json" else str(allowed.parent / where)
    with pytest.raises(DriverError) as err:
        driver(allowed, **{key: path})
    text = str(err.value)
    assert "datasource files" in text and f"'{key}'" in text
    if where != "relative.json":
        assert path in text
    assert "[drivers] file_allowed_dirs" in text and "add its folder" in text


def test_the_api_check_refuses_outside_with_the_option_and_the_fix(tree):
    allowed, outside = tree
    allow = DriverSettings(file_allowed_dirs=(str(allowed),))
    with pytest.raises(InvalidInput, match=r"outside the folders .*file_allowed_dirs"):
        validate_config("files", "file", {"action_log": str(outside / "a.log")}, allow)
    assert validate_config("files", "file", {"action_log": str(allowed / "a.log")},
                           allow) == {}


def test_a_linked_folder_on_the_way_is_not_followed(tree):
    allowed, outside = tree
    (allowed / "via").symlink_to(outside)
    d = driver(allowed, path=str(allowed / "via" / "secret.json"))
    with pytest.raises(DriverError, match=r"via is a symbolic link"):
        d.probe()
    log = driver(allowed, action_log=str(allowed / "via" / "a.log"))
    with pytest.raises(DriverError, match="is a symbolic link"):
        log.start()
    with pytest.raises(DriverError, match="is a symbolic link"):
        log.execute("log", [1], CTX)
    assert sorted(os.listdir(outside)) == ["secret.json"]


def test_a_linked_file_is_not_followed_as_path_entry_or_action_log(tree):
    allowed, outside = tree
    (allowed / "data" / "s.json").symlink_to(outside / "secret.json")
    (allowed / "secret.json").symlink_to(outside / "secret.json")
    (allowed / "log").symlink_to(outside / "new.log")
    for path in (allowed / "data", allowed / "secret.json"):
        with pytest.raises(DriverError, match="is a symbolic link"):
            driver(allowed, path=str(path)).probe()
    with pytest.raises(DriverError, match="is a symbolic link"):
        driver(allowed, action_log=str(allowed / "log")).execute("log", [1], CTX)
    assert not (outside / "new.log").exists()


def test_a_fifo_is_refused_without_blocking(tree):
    allowed, _ = tree
    os.mkfifo(allowed / "rows.json")
    os.mkfifo(allowed / "fifo.log")
    with pytest.raises(DriverError, match="not a regular file"):
        driver(allowed, path=str(allowed / "rows.json")).probe()
    with pytest.raises(DriverError, match="not a regular file"):
        driver(allowed, action_log=str(allowed / "fifo.log")).execute("log", [1], CTX)


def test_a_device_is_refused_and_dev_null_even_when_dev_is_allowed(tree):
    d = FileDriver("files", {"path": "/dev/null", "action_log": "/dev/null"},
                   lambda *_: None, DriverSettings(file_allowed_dirs=("/dev",)))
    with pytest.raises(DriverError, match="name a .json, .yaml or .csv file"):
        d.probe()
    with pytest.raises(DriverError, match="not a regular file .a character device"):
        d.execute("log", [1], CTX)
    allowed, _ = tree
    if os.geteuid() == 0:  # mknod needs root; a device made inside the allowed folder
        os.mknod(allowed / "zero.json", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        with pytest.raises(DriverError, match="character device"):
            driver(allowed, path=str(allowed / "zero.json")).probe()


def test_a_hard_link_is_refused(tree):
    allowed, outside = tree
    os.link(outside / "secret.json", allowed / "secret.json")
    with pytest.raises(DriverError, match="hard link"):
        driver(allowed, path=str(allowed / "secret.json")).probe()
    with pytest.raises(DriverError, match="hard link"):
        driver(allowed, action_log=str(allowed / "secret.json")).execute("log", [1], CTX)
    assert "log" not in (outside / "secret.json").read_text()


def test_a_folder_swapped_for_a_link_after_the_check_is_refused_at_the_next_read(tree):
    """The API checked the config and the DSD read it once; then the folder becomes a
    link to elsewhere: the next read and append refuse it, they do not follow it."""
    allowed, outside = tree
    d = driver(allowed, path=str(allowed / "data" / "t.json"),
               action_log=str(allowed / "data" / "a.log"))
    assert d.probe() == {"t": ["col0", "col1"]}
    d.execute("log", [1], CTX)
    (allowed / "data").rename(allowed / "data.old")
    (allowed / "data").symlink_to(outside)
    (outside / "t.json").write_text('{"stolen": [[1]]}')
    with pytest.raises(DriverError, match="data is a symbolic link"):
        d.probe()
    with pytest.raises(DriverError, match="data is a symbolic link"):
        d.execute("log", [2], CTX)
    assert not (outside / "a.log").exists()


def test_a_folder_swapped_for_a_link_in_the_middle_of_the_walk_is_refused(tree, monkeypatch):
    """The race made deterministic: the swap happens right before the walk opens the
    component, after the allowed folder was opened and the text check passed."""
    allowed, outside = tree
    (outside / "t.json").write_text('{"stolen": [[1]]}')
    d = driver(allowed, path=str(allowed / "data" / "t.json"))
    real_open = os.open
    swapped = []

    def open_racing(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is not None and path == "data" and not swapped:
            (allowed / "data").rename(allowed / "data.old")
            (allowed / "data").symlink_to(outside)
            swapped.append(True)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(confine.os, "open", open_racing)
    with pytest.raises(DriverError, match="data is a symbolic link"):
        d.probe()
    assert swapped


def test_the_allowed_folder_missing_says_so(tmp_path):
    d = driver(tmp_path / "nowhere", action_log=str(tmp_path / "nowhere" / "a.log"))
    with pytest.raises(DriverError, match="cannot open the allowed folder .*create it"):
        d.start()


def test_the_longest_allowed_folder_wins_and_the_allowed_folder_itself_is_no_file(tmp_path):
    dirs = confine.AllowedDirs((str(tmp_path), str(tmp_path / "a")))
    assert dirs.locate(str(tmp_path / "a" / "b" / "c")) == (str(tmp_path / "a"), ["b", "c"])
    assert dirs.locate(str(tmp_path) + "/./x") == (str(tmp_path), ["x"])
    with pytest.raises(confine.Refused, match="allowed folder itself"):
        dirs.open_file(str(tmp_path), os.O_RDONLY)
