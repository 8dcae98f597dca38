"""congress_ha.store.schema on SQLite: the revision checked at every open, migrations,
and the stamp of a database made before migrations (tests/unit/test_ctl_db.py: the
`congress-ha-ctl db` commands).

tests/integration/test_schema_migrations.py runs the same cases on PostgreSQL and
MariaDB.
"""

from __future__ import annotations

import pytest

from congress_ha.store import schema
from congress_ha.store.db import StoreError, open_engine
from tests.support.schema import (
    UNKNOWN_REVISION,
    columns,
    create_like_before_migrations,
    differences,
    migrations_one_ahead,
    set_version,
    stored,
    versions,
)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


def test_an_empty_database_gets_exactly_the_schema_of_the_models_at_head(url):
    open_engine(url).dispose()
    assert differences(url) == []
    assert versions(url) == ["0001"]
    assert stored(url) == (0, [], [])


def test_opening_a_database_at_head_changes_nothing(url):
    open_engine(url).dispose()
    open_engine(url).dispose()
    assert versions(url) == ["0001"] and stored(url)[0] == 0


def test_a_database_made_by_create_all_is_stamped_at_0001_and_keeps_its_rows(url):
    create_like_before_migrations(url)
    before = stored(url)
    assert versions(url) == []
    open_engine(url).dispose()
    assert versions(url) == ["0001"]
    assert stored(url) == before and before[0] == 7
    assert differences(url) == []


def test_some_of_our_tables_without_a_revision_are_refused_not_stamped(url):
    from sqlalchemy import create_engine

    from congress_ha.store.models import Base

    engine = create_engine(url)
    Base.metadata.create_all(engine, tables=[Base.metadata.tables["datasources"]])
    engine.dispose()
    with pytest.raises(StoreError, match=r"some of congress-ha's tables \(datasources\)"):
        open_engine(url)
    assert versions(url) == []


def test_an_older_database_is_refused_and_migrated_only_when_asked(url, tmp_path,
                                                                 monkeypatch):
    open_engine(url).dispose()  # 0001, by the release before
    monkeypatch.setattr(schema, "MIGRATIONS", migrations_one_ahead(tmp_path))
    with pytest.raises(StoreError) as err:
        open_engine(url)
    assert ("the database schema is at revision 0001, this release needs 0002: run "
            "`congress-ha-ctl db upgrade` (once, from any node) before starting it"
            ) in str(err.value)
    assert versions(url) == ["0001"] and "pushed_at" not in columns(url, "pushed_rows")
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == ["0002"] and "pushed_at" in columns(url, "pushed_rows")
    open_engine(url).dispose()  # and now it starts


def test_an_empty_database_is_migrated_through_every_revision(url, tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", migrations_one_ahead(tmp_path))
    open_engine(url).dispose()
    assert versions(url) == ["0002"] and "pushed_at" in columns(url, "pushed_rows")


def test_a_database_newer_than_this_code_is_refused_naming_both_revisions(url):
    open_engine(url).dispose()
    set_version(url, UNKNOWN_REVISION)
    for upgrade in (False, True):
        with pytest.raises(StoreError) as err:
            open_engine(url, upgrade=upgrade)
        msg = str(err.value)
        assert f"at revision {UNKNOWN_REVISION}" in msg and "its newest is 0001" in msg
        assert "this node runs an older congress-ha than the database" in msg
        assert "upgrade congress-ha on this node" in msg
    assert versions(url) == [UNKNOWN_REVISION]
