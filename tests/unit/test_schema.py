"""congress_ha.store.schema on SQLite: the revision checked at every open, migrations,
and the stamp of a database made before migrations (tests/unit/test_ctl_db.py: the
`congress-ha-ctl db` commands).

tests/integration/test_schema_migrations.py runs the same cases on PostgreSQL and
MariaDB.
"""

from __future__ import annotations

import pytest

from congress_ha.store import schema
from congress_ha.store.db import StoreError, new_engine, open_engine
from tests.support.schema import (
    HEAD,
    NEXT,
    PUSHED,
    UNKNOWN_REVISION,
    columns,
    create_at_baseline,
    create_like_before_migrations,
    differences,
    migrations_one_ahead,
    pushed,
    set_version,
    stored,
    versions,
)

KEPT = (7, ["p(x) :- q(x)"])  # what create_at_baseline stores: policy revision, rules


def refusal(before: str, after: str) -> str:
    return (f"the database schema is at revision {before}, this release needs {after}: run "
            "`congress-ha-ctl db upgrade` (once, from any node) before starting it")


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


def test_an_empty_database_gets_exactly_the_schema_of_the_models_at_head(url):
    open_engine(url).dispose()
    assert differences(url) == []
    assert versions(url) == [HEAD]
    assert stored(url) == (0, [], [])


def test_opening_a_database_at_head_changes_nothing(url):
    open_engine(url).dispose()
    open_engine(url).dispose()
    assert versions(url) == [HEAD] and stored(url)[0] == 0


def test_the_baseline_helper_makes_exactly_0001s_schema(url):
    create_like_before_migrations(url)
    assert "version" not in columns(url, "pushed_rows")
    assert pushed(url) == [(*PUSHED, None)] and stored(url)[:2] == KEPT


def test_a_database_made_before_migrations_is_stamped_0001_refused_then_upgraded(url):
    create_like_before_migrations(url)
    assert versions(url) == []
    with pytest.raises(StoreError) as err:
        open_engine(url)
    assert refusal("0001", HEAD) in str(err.value)
    assert versions(url) == ["0001"] and "version" not in columns(url, "pushed_rows")
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == [HEAD] and differences(url) == []
    assert stored(url)[:2] == KEPT and pushed(url) == [(*PUSHED, 0)]
    open_engine(url).dispose()  # and now it starts


def test_db_upgrade_stamps_and_migrates_a_database_made_before_migrations_at_once(url):
    create_like_before_migrations(url)
    engine = new_engine(url)
    try:
        change = schema.ensure_schema(engine, upgrade=True)  # what `db upgrade` runs
    finally:
        engine.dispose()
    assert change == schema.SchemaChange("0001", HEAD, stamped=True)
    assert versions(url) == [HEAD] and differences(url) == []
    assert stored(url)[:2] == KEPT and pushed(url) == [(*PUSHED, 0)]


def test_pushed_rows_at_0001_are_kept_at_version_0_by_the_upgrade_to_head(url):
    create_at_baseline(url)
    assert versions(url) == ["0001"] and pushed(url) == [(*PUSHED, None)]
    with pytest.raises(StoreError) as err:
        open_engine(url)
    assert refusal("0001", HEAD) in str(err.value)
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == [HEAD] and differences(url) == []
    assert pushed(url) == [(*PUSHED, 0)] and stored(url)[:2] == KEPT


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
    open_engine(url).dispose()  # HEAD, by the release before
    monkeypatch.setattr(schema, "MIGRATIONS", migrations_one_ahead(tmp_path))
    with pytest.raises(StoreError) as err:
        open_engine(url)
    assert refusal(HEAD, NEXT) in str(err.value)
    assert versions(url) == [HEAD] and "pushed_at" not in columns(url, "pushed_rows")
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == [NEXT] and "pushed_at" in columns(url, "pushed_rows")
    open_engine(url).dispose()  # and now it starts


def test_an_empty_database_is_migrated_through_every_revision(url, tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", migrations_one_ahead(tmp_path))
    open_engine(url).dispose()
    assert versions(url) == [NEXT] and "pushed_at" in columns(url, "pushed_rows")
    assert "version" in columns(url, "pushed_rows")


def test_a_database_newer_than_this_code_is_refused_naming_both_revisions(url):
    open_engine(url).dispose()
    set_version(url, UNKNOWN_REVISION)
    for upgrade in (False, True):
        with pytest.raises(StoreError) as err:
            open_engine(url, upgrade=upgrade)
        msg = str(err.value)
        assert f"at revision {UNKNOWN_REVISION}" in msg and f"its newest is {HEAD}" in msg
        assert "this node runs an older congress-ha than the database" in msg
        assert "upgrade congress-ha on this node" in msg
    assert versions(url) == [UNKNOWN_REVISION]
