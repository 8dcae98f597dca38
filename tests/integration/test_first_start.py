"""A new cluster's first start: 3 api-pe + 1 DSD at the same instant on an empty
database, 10 rounds each on PostgreSQL, MariaDB and SQLite.

Every process creates the schema and the seed rows at once; none may fail, and
the database ends with one revision row and each default policy once. Also: the
three PostgreSQL URL forms operators write all work.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from congress_ha.roles.policies import DEFAULT_POLICIES
from congress_ha.store.db import normalize_url, open_engine
from congress_ha.store.models import Policy, PolicyRevision
from tests.support.mariadb import MariaDB
from tests.support.postgres import Postgres
from tests.support.procs import Cluster, wait_for

ROUNDS = 10
pytestmark = pytest.mark.integration


class SqliteFiles:
    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="chit-sqlite-"))

    def create_database(self, name: str) -> str:
        return f"sqlite:///{self.base / name}.sqlite"

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module", params=["postgresql", "mariadb", "sqlite"])
def database(request):
    db = {"postgresql": lambda: Postgres(prefix="chit"), "mariadb": lambda: MariaDB("chit"),
          "sqlite": SqliteFiles}[request.param]()
    try:
        if hasattr(db, "start"):
            db.start()
        yield db
    finally:
        db.cleanup()


def test_three_api_pe_and_a_dsd_start_at_once_on_an_empty_database(broker, database,
                                                                   tmp_path):
    for r in range(ROUNDS):
        url = database.create_database(f"first{r}")
        c = Cluster(tmp_path / f"round{r}", broker.url, db_url=url)
        procs = [c.add_pe(f"pe{i}") for i in (1, 2, 3)] + [c.add_dsd("dsd")]
        try:
            for p in procs:          # as close to one instant as Popen allows
                p.start()

            def all_ready(procs=procs, r=r):
                for p in procs:
                    if not p.running():
                        raise AssertionError(f"round {r}: {p.name} exited "
                                             f"{p.popen.returncode}:\n{p.logtext()[-3000:]}")
                return all(p.healthy("datasources" if p is procs[-1] else "api-pe")
                           for p in procs)

            wait_for(all_ready, 60, f"round {r}: every process ready", interval=0.2)
            for p in procs:
                assert "Traceback" not in p.logtext(), p.logtext()[-3000:]
            engine = create_engine(normalize_url(url))
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(PolicyRevision)
                                    ).scalar() == 1
                names = sorted(conn.execute(select(Policy.name)).scalars())
            engine.dispose()
            assert names == sorted(n for n, _ in DEFAULT_POLICIES), f"round {r}: {names}"
        finally:
            c.stop_all()


def test_every_url_form_operators_write_works(database):
    """postgresql:// means psycopg 3; +psycopg and +psycopg2 work too; mysql:// means
    PyMySQL."""
    base = database.create_database("forms")
    scheme, rest = base.split("://", 1)
    forms = {"postgresql": ["postgresql", "postgresql+psycopg", "postgresql+psycopg2"],
             "mysql+pymysql": ["mysql", "mysql+pymysql", "mariadb+pymysql"],
             "sqlite": ["sqlite"]}[scheme]
    for form in forms:
        engine = open_engine(f"{form}://{rest}")
        try:
            if "+" not in form:
                assert engine.url.drivername in ("postgresql+psycopg", "mysql+pymysql",
                                                 "sqlite")
            with engine.connect() as conn:
                assert conn.execute(select(PolicyRevision.revision)).scalar() == 0, form
        finally:
            engine.dispose()


def test_schema_and_seed_are_idempotent_under_a_thundering_herd(database):
    """Eight openers released at once by a barrier, on a new database each round: the
    race that whole processes hit only now and then, made to happen every time."""
    import threading

    from congress_ha.roles.policies import PolicyManager  # noqa: F401 - import cost first
    from congress_ha.store.db import session_factory
    from congress_ha.store.policies import PolicyStore

    for r in range(ROUNDS):
        url = database.create_database(f"herd{r}")
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def open_one(barrier=barrier, url=url, errors=errors):
            try:
                barrier.wait(10)
                PolicyStore(session_factory(open_engine(url))).revision()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [], f"round {r}: {errors}"
        engine = open_engine(url)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(PolicyRevision)).scalar() == 1
        engine.dispose()
