"""Opening the database: one engine per process, schema created on first use.

Every api-pe clone instance and the DSD start at once on a new cluster, and
each creates the schema: two CREATE TABLEs of one name collide (PostgreSQL:
pg_type's unique index; SQLite: "already exists"; MariaDB: error 1050), and so
do two seed rows.  So creation and seeding run one process at a time, under a
lock the database itself holds (PostgreSQL advisory lock, MariaDB GET_LOCK, a
lock file beside a SQLite database), and the seed insert is idempotent on its
own as well (``ON CONFLICT DO NOTHING`` / ``INSERT IGNORE``).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from congress_ha.config import masked_url
from congress_ha.store.models import Base, PolicyRevision
from congress_ha.timings import seconds

# URL driver name -> the package that provides it (what to pip install).
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pymysql": "PyMySQL",
    "mysqldb": "mysqlclient",
}
# `postgresql://` means psycopg2 to SQLAlchemy 2.0 and psycopg 3 to 2.1: we pin
# the meaning to psycopg 3, the driver we ship, whatever SQLAlchemy says.
DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}

SCHEMA_LOCK_KEY = 0x636F6E67  # "cong": PostgreSQL advisory lock key
SCHEMA_LOCK_NAME = "congress-ha-schema"  # MariaDB/MySQL GET_LOCK name
SCHEMA_LOCK_TIMEOUT = int(seconds("SCHEMA_LOCK_TIMEOUT"))  # congress_ha/timings.py
ORPHAN_TRANSACTION_TIMEOUT = int(seconds("ORPHAN_TRANSACTION_TIMEOUT"))


class StoreError(Exception):
    """The database could not be opened or used; the message says why."""


def masked(url: str) -> str:
    """``url`` with its password replaced by ***, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return masked_url(url)


def normalize_url(url: str) -> URL:
    """The URL with the driver we mean spelled out (``postgresql://`` -> psycopg 3)."""
    try:
        u = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"[database] connection {masked(url)!r} is not a valid SQLAlchemy "
                         f"URL ({exc}); e.g. postgresql://user:password@host/db") from None
    if "+" not in u.drivername and u.drivername in DEFAULT_DRIVERS:
        u = u.set(drivername=f"{u.drivername}+{DEFAULT_DRIVERS[u.drivername]}")
    return u


def _driver_error(u: URL, exc: BaseException) -> StoreError:
    driver = u.get_driver_name()
    package = DRIVER_PACKAGES.get(driver, driver)
    shown = u.render_as_string(hide_password=True)
    return StoreError(
        f"[database] connection {shown!r}: the database driver {driver!r} is not "
        f"installed ({type(exc).__name__}): install it with `pip install {package}` "
        "into the service's venv, or name a driver that is installed "
        "(postgresql+psycopg://, mysql+pymysql://, sqlite:///)")


def open_engine(url: str) -> Engine:
    """An engine on ``url`` with the schema created and seeded (StoreError if not)."""
    u = normalize_url(url)
    url = u.render_as_string(hide_password=True)  # for messages from here on
    try:
        if u.get_backend_name() == "sqlite":
            engine = create_engine(u, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(conn, _record):  # pragma: no cover - trivial
                cur = conn.cursor()
                # WAL lets readers and one writer of several processes overlap.
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()
        else:
            engine = create_engine(u, pool_pre_ping=True)
            event.listen(engine, "connect", _end_orphans_on(u.get_backend_name()))
    except NoSuchModuleError:
        raise StoreError(f"[database] connection {url!r}: unknown database kind "
                         f"{u.drivername!r}; use postgresql://, "
                         "mysql+pymysql:// or sqlite:///") from None
    except (ModuleNotFoundError, ImportError) as exc:
        raise _driver_error(u, exc) from None
    except ArgumentError as exc:
        raise StoreError(f"[database] connection {url!r} is not valid: "
                         f"{_first_line(exc, u)}") from None
    try:
        create_schema(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database ([database] connection "
                         f"{url!r}): {_first_line(exc, u)}") from None
    return engine


def _end_orphans_on(backend: str):
    """A connect hook: the server ends this session if it idles inside a transaction.

    A process whose host dies or is cut off between an INSERT and its COMMIT
    leaves its transaction open on the server, which waits for the client's
    next word for hours (TCP keepalive).  Its row locks stay: the journal row of
    the action it was recording, the policy revision row.  The DSD or API
    process that takes over blocks on the same key until then.  So each
    session asks the server to end it after ORPHAN_TRANSACTION_TIMEOUT of
    silence in a transaction; none of ours idles a millisecond there.
    """
    if backend == "postgresql":
        statement = ("SET idle_in_transaction_session_timeout = "
                     f"{ORPHAN_TRANSACTION_TIMEOUT * 1000}")
    else:  # MariaDB >= 10.3; MySQL has no such variable and keeps its default
        statement = f"SET SESSION idle_transaction_timeout = {ORPHAN_TRANSACTION_TIMEOUT}"

    def hook(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute(statement)
        except Exception:  # noqa: BLE001 - MySQL: unknown variable; the session still works
            dbapi_conn.rollback()
        else:
            dbapi_conn.commit()
        finally:
            cur.close()

    return hook


def _first_line(exc: BaseException, u: URL) -> str:
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    password = u.password
    return line.replace(str(password), "***") if password else line


def create_schema(engine: Engine) -> None:
    """Create missing tables and seed rows; safe when several processes do it at once."""
    with _schema_lock(engine) as conn:
        Base.metadata.create_all(conn)
        _seed(conn)
        conn.commit()


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    dialect = engine.dialect.name
    if dialect == "sqlite":
        database = engine.url.database
        if database in (None, "", ":memory:"):
            with engine.connect() as conn:
                yield conn
            return
        # SQLite has no advisory locks: a lock file beside the database.
        with open(f"{database}.schema-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        if dialect == "postgresql":
            # Held until the transaction ends: create_all and the seed share it.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            yield conn
        elif dialect in ("mysql", "mariadb"):
            # DDL commits implicitly in MariaDB, so a transaction cannot hold the
            # lock: GET_LOCK belongs to the session and survives those commits.
            got = conn.execute(text("SELECT GET_LOCK(:n, :t)"),
                               {"n": SCHEMA_LOCK_NAME, "t": SCHEMA_LOCK_TIMEOUT}).scalar()
            if got != 1:
                raise StoreError(f"another process held the schema lock for over "
                                 f"{SCHEMA_LOCK_TIMEOUT} s (GET_LOCK {SCHEMA_LOCK_NAME!r})")
            try:
                yield conn
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": SCHEMA_LOCK_NAME})
                conn.commit()
        else:
            yield conn


def _seed(conn: Connection) -> None:
    """The rows every store expects from the first start on (one, for now)."""
    table = PolicyRevision.__table__
    if conn.execute(select(table.c.id).where(table.c.id == 1)).first() is not None:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table).values(id=1, revision=0).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).values(id=1, revision=0).on_conflict_do_nothing()
    elif dialect in ("mysql", "mariadb"):
        stmt = insert(table).values(id=1, revision=0).prefix_with("IGNORE")
    else:
        stmt = insert(table).values(id=1, revision=0)
    conn.execute(stmt)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
