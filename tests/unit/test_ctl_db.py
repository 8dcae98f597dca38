"""congress-ha-ctl db upgrade|version on SQLite, as an operator runs them: what they
print, their exit codes, and the refusals of an older and of a newer database."""

from __future__ import annotations

import subprocess

import pytest

from congress_ha import ctl
from congress_ha.store import schema
from congress_ha.store.db import StoreError, open_engine
from tests.support.procs import VENV_BIN
from tests.support.schema import (
    HEAD,
    NEXT,
    PUSHED,
    UNKNOWN_REVISION,
    columns,
    create_at_baseline,
    create_like_before_migrations,
    migrations_one_ahead,
    pushed,
    set_version,
    stored,
    versions,
)

CTL = str(VENV_BIN / "congress-ha-ctl")


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


@pytest.fixture
def config_file(tmp_path, url):
    path = tmp_path / "congress-ha.conf"
    path.write_text(f"[DEFAULT]\ntransport_url = rabbit://u:p@127.0.0.1:1/\n"
                    f"[database]\nconnection = {url}\n")
    return str(path)


def db(config_file, *args):
    """congress-ha-ctl db ARGS, in its own process."""
    return subprocess.run([CTL, "db", *args, "--config-file", config_file],
                          capture_output=True, text=True, timeout=60)


def test_db_upgrade_then_version_on_an_empty_database(config_file, url):
    r = db(config_file, "version")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[:2] == ["database revision (none)", f"code head         {HEAD}"]
    assert versions(url) == []  # version only reads

    r = db(config_file, "upgrade")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"upgraded (empty) -> {HEAD}\n", "")
    r = db(config_file, "upgrade")
    assert (r.returncode, r.stdout) == (0, f"unchanged at {HEAD}\n")
    r = db(config_file, "version")
    assert r.returncode == 0
    assert r.stdout == f"database revision {HEAD}\ncode head         {HEAD}\nup to date\n"


def test_db_upgrade_stamps_and_migrates_a_database_made_before_migrations(config_file,
                                                                          url):
    create_like_before_migrations(url)
    r = db(config_file, "version")
    assert (r.returncode, r.stdout) == (0, (
        "database revision 0001 (tables made before migrations: stamped at the next start)\n"
        f"code head         {HEAD}\nolder than this release: run `congress-ha-ctl db "
        "upgrade` (once, from any node)\n"))
    assert versions(url) == []  # version only reads
    r = db(config_file, "upgrade")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == ("stamped 0001: the tables an earlier congress-ha created\n"
                        f"upgraded 0001 -> {HEAD}\n")
    assert versions(url) == [HEAD] and stored(url)[0] == 7
    assert pushed(url) == [(*PUSHED, 0)]
    r = db(config_file, "upgrade")
    assert (r.returncode, r.stdout) == (0, f"unchanged at {HEAD}\n")


def test_db_upgrade_after_a_start_stamped_and_refused_a_database_made_before_migrations(
        config_file, url):
    create_like_before_migrations(url)
    with pytest.raises(StoreError):
        open_engine(url)  # a start: stamps 0001, refuses
    r = db(config_file, "version")
    assert (r.returncode, r.stdout.splitlines()[0]) == (0, "database revision 0001")
    r = db(config_file, "upgrade")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"upgraded 0001 -> {HEAD}\n", "")
    assert versions(url) == [HEAD] and stored(url)[0] == 7


def test_db_upgrade_keeps_pushed_rows_of_a_database_at_0001_at_version_0(config_file, url):
    create_at_baseline(url)
    r = db(config_file, "upgrade")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"upgraded 0001 -> {HEAD}\n", "")
    assert versions(url) == [HEAD] and pushed(url) == [(*PUSHED, 0)]


def test_db_upgrade_on_a_newer_database_fails_with_the_reason_and_no_traceback(config_file,
                                                                              url):
    open_engine(url).dispose()
    set_version(url, UNKNOWN_REVISION)
    r = db(config_file, "upgrade")
    assert r.returncode == 1 and r.stdout == ""
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
    assert f"at revision {UNKNOWN_REVISION}" in r.stderr
    assert "upgrade congress-ha on this node" in r.stderr
    r = db(config_file, "version")
    assert r.returncode == 0 and f"database revision {UNKNOWN_REVISION}" in r.stdout
    assert "newer than this release" in r.stdout


def test_db_commands_on_a_database_that_cannot_be_opened_fail_with_exit_1(tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("[DEFAULT]\ntransport_url = rabbit://u:p@127.0.0.1:1/\n[database]\n"
                    f"connection = sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}\n")
    for action in ("upgrade", "version"):
        r = db(str(path), action)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "cannot open the database ([database] connection" in r.stderr


def test_db_version_shows_an_older_database_and_db_upgrade_migrates_it(url, config_file,
                                                                      tmp_path, monkeypatch,
                                                                      capsys):
    open_engine(url).dispose()  # HEAD, by the release before
    monkeypatch.setattr(schema, "MIGRATIONS", migrations_one_ahead(tmp_path))  # this one: NEXT
    assert ctl.main(["db", "version", "--config-file", config_file]) == 0
    assert capsys.readouterr().out == (
        f"database revision {HEAD}\ncode head         {NEXT}\nolder than this release: run "
        "`congress-ha-ctl db upgrade` (once, from any node)\n")
    assert ctl.main(["db", "upgrade", "--config-file", config_file]) == 0
    assert capsys.readouterr().out == f"upgraded {HEAD} -> {NEXT}\n"
    assert versions(url) == [NEXT] and "pushed_at" in columns(url, "pushed_rows")
    assert ctl.main(["db", "upgrade", "--config-file", config_file]) == 0
    assert capsys.readouterr().out == f"unchanged at {NEXT}\n"


def test_a_server_refuses_an_older_database_in_one_line_naming_db_upgrade(url, tmp_path):
    """The real server (all roles in one process), its package one revision ahead of
    the database."""
    open_engine(url).dispose()
    ahead = migrations_one_ahead(tmp_path)
    config_file = tmp_path / "server.conf"
    config_file.write_text(f"[DEFAULT]\ntransport_url = fake://\n[ha]\nrun_dir = {tmp_path}\n"
                           f"[database]\nconnection = {url}\n")
    config_file = str(config_file)
    code = (f"from pathlib import Path; from congress_ha.store import schema; "
            f"schema.MIGRATIONS = Path({str(ahead)!r}); from congress_ha import server; "
            f"raise SystemExit(server.main(['--config-file', {config_file!r}, '--all']))")
    r = subprocess.run([str(VENV_BIN / "python"), "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert (f"the database schema is at revision {HEAD}, this release needs {NEXT}: run "
            "`congress-ha-ctl db upgrade` (once, from any node) before starting it"
            ) in r.stderr
    assert versions(url) == [HEAD]
