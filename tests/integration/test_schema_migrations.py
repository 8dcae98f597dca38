"""Schema migrations on real PostgreSQL and MariaDB servers: an empty database
migrated to head has exactly the models' schema, one made before migrations is
stamped 0001, refused, and upgraded to head keeping its rows, and older or newer
revisions are refused (SQLite: the same cases in tests/unit/test_schema.py)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine, inspect

from congress_ha.store import schema
from congress_ha.store.db import StoreError, normalize_url, open_engine
from tests.support.mariadb import MariaDB
from tests.support.postgres import Postgres
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
    assert versions(url) == [HEAD] and stored(url) == (0, [], [])


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


def test_a_database_made_before_migrations_is_stamped_refused_and_upgraded_keeping_rows(
        server):
    url = server.create_database("before_migrations")
    create_like_before_migrations(url)
    assert versions(url) == [] and "version" not in columns(url, "pushed_rows")
    with pytest.raises(StoreError, match=rf"at revision 0001, this release needs {HEAD}: "
                                         r"run `congress-ha-ctl db upgrade`"):
        open_engine(url)
    assert versions(url) == ["0001"] and "version" not in columns(url, "pushed_rows")
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == [HEAD] and differences(url) == []
    revision, rules, times = stored(url)
    assert (revision, rules) == (7, ["p(x) :- q(x)"])
    assert times == [datetime(2026, 1, 2, 3, 4, 5, 678901)]
    assert pushed(url) == [(*PUSHED, 0)]
    open_engine(url).dispose()  # and now it starts


def test_upgrading_a_database_at_0001_keeps_its_pushed_rows_at_version_0(server):
    url = server.create_database("pushed_at_0001")
    create_at_baseline(url)
    assert versions(url) == ["0001"] and pushed(url) == [(*PUSHED, None)]
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == [HEAD] and differences(url) == []
    assert pushed(url) == [(*PUSHED, 0)] and stored(url)[:2] == (7, ["p(x) :- q(x)"])


def test_an_older_database_is_refused_and_upgraded_only_when_asked(server, tmp_path,
                                                                   monkeypatch):
    url = server.create_database("older")
    open_engine(url).dispose()
    monkeypatch.setattr(schema, "MIGRATIONS", migrations_one_ahead(tmp_path))
    with pytest.raises(StoreError, match=rf"at revision {HEAD}, this release needs {NEXT}: "
                                         r"run `congress-ha-ctl db upgrade`"):
        open_engine(url)
    assert versions(url) == [HEAD] and "pushed_at" not in columns(url, "pushed_rows")
    open_engine(url, upgrade=True).dispose()
    assert versions(url) == [NEXT] and "pushed_at" in columns(url, "pushed_rows")


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
