"""Schema migrations on real PostgreSQL and MariaDB servers: an empty database
migrated to head has exactly the models' schema, one made by create_all is stamped
and keeps its rows, and older or newer revisions are refused (SQLite: the same cases
in tests/unit/test_schema.py)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine, inspect

from congress_ha.store import schema
from congress_ha.store.db import StoreError, normalize_url, open_engine
from tests.support.mariadb import MariaDB
from tests.support.postgres import Postgres
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

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def server(request):
    db = Postgres(prefix="chit") if request.param == "postgresql" else MariaDB("chit")
    try:
        db.start()
        yield db
    finally:
        db.cleanup()


def test_an_empty_database_migrated_to_head_has_exactly_the_models_schema(server):
    url = server.create_database("empty_to_head")
    open_engine(url).dispose()
    assert differences(url) == []
    assert versions(url) == ["0001"] and stored(url) == (0, [], [])


def test_every_timestamp_column_keeps_microseconds(server):
    url = server.create_database("fsp")
    open_engine(url).dispose()
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        found = {(t, c["name"]): c["type"] for t in ("action_journal", "policies", "rules")
                 for c in inspect(conn).get_columns(t) if c["name"].endswith("_at")}
    engine.dispose()
    assert len(found) == 3
    if engine.dialect.name == "postgresql":  # TIMESTAMP keeps microseconds by default
        assert {(type(t).__name__, t.precision) for t in found.values()} == {
            ("TIMESTAMP", None)}, found
    else:  # a plain DATETIME would drop them
        assert {(type(t).__name__, t.fsp) for t in found.values()} == {("DATETIME", 6)}, found


def test_a_database_made_by_create_all_is_stamped_at_0001_and_keeps_its_rows(server):
    url = server.create_database("before_migrations")
    create_like_before_migrations(url)
    assert versions(url) == []
    open_engine(url).dispose()
    assert versions(url) == ["0001"] and differences(url) == []
    revision, rules, times = stored(url)
    assert (revision, rules) == (7, ["p(x) :- q(x)"])
    assert times == [datetime(2026, 1, 2, 3, 4, 5, 678901)]


def test_an_older_database_is_refused_and_upgraded_only_when_asked(server, tmp_path,
                                                                   monkeypatch):
    url = server.create_database("older")
    open_engine(url).dispose()
    monkeypatch.setattr(schema, "MIGRATIONS", migrations_one_ahead(tmp_path))
    with pytest.raises(StoreError, match=r"at revision 0001, this release needs 0002: run "
                                         r"`congress-ha-ctl db upgrade`"):
        open_engine(url)
    assert versions(url) == ["0001"] and "pushed_at" not in columns(url, "pushed_rows")
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == ["0002"] and "pushed_at" in columns(url, "pushed_rows")


def test_a_newer_database_is_refused_and_left_as_it_is(server):
    url = server.create_database("newer")
    open_engine(url).dispose()
    set_version(url, UNKNOWN_REVISION)
    with pytest.raises(StoreError) as err:
        open_engine(url, upgrade=True)
    assert f"at revision {UNKNOWN_REVISION}" in str(err.value)
    assert "this node runs an older congress-ha than the database" in str(err.value)
    assert versions(url) == [UNKNOWN_REVISION]
    # the refusal released the schema lock: the next opener gets the same answer
    with pytest.raises(StoreError, match="upgrade congress-ha on this node"):
        open_engine(url)
