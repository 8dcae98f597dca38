"""congress_ha.store: schema creation and the revision guard."""

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
