"""congress_ha.store: schema creation at once, URLs, drivers and the revision guard."""

import threading

import pytest

from congress_ha.store.db import StoreError, open_engine, session_factory
from congress_ha.store.policies import PolicyStore, RevisionConflict


def test_several_processes_may_create_the_schema_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    errors = []

    def open_one():
        try:
            open_engine(url)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_write_at_a_stale_revision_is_a_conflict_and_changes_nothing(tmp_path):
    store = PolicyStore(session_factory(open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")))
    rev = store.revision()
    store.create_policy(rev, "a", "", "", "nonrecursive")
    with pytest.raises(RevisionConflict):
        store.create_policy(rev, "b", "", "", "nonrecursive")
    state = store.load()
    assert state.revision == rev + 1 and set(state.policies) == {"a"}


def test_a_bad_database_url_names_the_option():
    with pytest.raises(StoreError, match=r"\[database\] connection"):
        open_engine("nosuchdialect://x")


def test_plain_postgresql_means_psycopg_3_whatever_sqlalchemy_defaults_to():
    from congress_ha.store.db import normalize_url

    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg2://u:p@h/db").drivername == "postgresql+psycopg2"
    assert normalize_url("mysql://u:p@h/db").drivername == "mysql+pymysql"
    assert normalize_url("sqlite:////tmp/x").drivername == "sqlite"


@pytest.mark.parametrize("url, package", [
    ("mysql+mysqldb://congress:hunter2@127.0.0.1:1/congress", "pip install mysqlclient"),
    ("postgresql+pg8000://congress:hunter2@127.0.0.1:1/congress", "pip install pg8000"),
])
def test_a_driver_that_is_not_installed_names_the_package_and_hides_the_password(url, package):
    with pytest.raises(StoreError) as err:
        open_engine(url)
    msg = str(err.value)
    assert package in msg and "[database] connection" in msg
    assert "hunter2" not in msg and "***" in msg


@pytest.mark.parametrize("url", [
    "postgresql://congress:hunter2@127.0.0.1:notaport/congress",
    "nosuchdialect://congress:hunter2@host/db",
    "postgresql://congress:hunter2@127.0.0.1:1/congress",   # nothing listens there
])
def test_no_database_error_echoes_the_password(url):
    with pytest.raises(StoreError) as err:
        open_engine(url)
    assert "hunter2" not in str(err.value) and "[database] connection" in str(err.value)


def test_schema_creation_seeds_the_revision_row_once(tmp_path):
    from sqlalchemy import func, select

    from congress_ha.store.models import PolicyRevision
    from congress_ha.store.schema import ensure_schema

    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ensure_schema(engine)
    ensure_schema(engine, upgrade=True)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PolicyRevision)).scalar() == 1
