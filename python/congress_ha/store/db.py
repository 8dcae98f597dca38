"""Opening the database: one engine per process, its schema checked on first use.

``open_engine`` makes the engine (the driver we mean, a clear error for a bad URL
or a driver that is not installed, hooks that end orphaned transactions) and
then has ``store/schema.py`` check the schema's revision, creating the schema
in an empty database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from congress_ha.config import masked_url
from congress_ha.store.errors import StoreError
from congress_ha.store.schema import ensure_schema
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

ORPHAN_TRANSACTION_TIMEOUT = int(seconds("ORPHAN_TRANSACTION_TIMEOUT"))


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


def open_engine(url: str, upgrade: bool = False) -> Engine:
    """An engine on ``url`` whose schema is this code's (StoreError if not).

    An empty database gets the schema; one at an older revision is migrated only
    with ``upgrade`` (``congress-ha-ctl db upgrade``), and refused otherwise.
    """
    engine = new_engine(url)
    with store_errors(engine):
        ensure_schema(engine, upgrade=upgrade)
    return engine


def new_engine(url: str) -> Engine:
    """An engine on ``url``, its schema not looked at (StoreError for a bad URL)."""
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
    return engine


@contextlib.contextmanager
def store_errors(engine: Engine) -> Iterator[None]:
    """Turns a database error inside the block into a StoreError that says where
    (the URL, password masked), and disposes of the engine."""
    try:
        yield
    except SQLAlchemyError as exc:
        engine.dispose()
        url = engine.url.render_as_string(hide_password=True)
        raise StoreError(f"cannot open the database ([database] connection "
                         f"{url!r}): {_first_line(exc, engine.url)}") from None
    except StoreError:
        engine.dispose()
        raise


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
        statements = ["SET idle_in_transaction_session_timeout = "
                      f"{ORPHAN_TRANSACTION_TIMEOUT * 1000}"]
    else:  # MariaDB >= 10.3; MySQL has no such variable and keeps its default
        statements = [f"SET SESSION idle_transaction_timeout = {ORPHAN_TRANSACTION_TIMEOUT}",
                      # Galera: a read waits until this node has applied what the
                      # cluster committed before it (causal reads), so a write that
                      # lost certification validates again on the winner's state,
                      # and a PE that hears of a revision reads that revision. A
                      # server without Galera refuses or ignores it; both are fine.
                      "SET SESSION wsrep_sync_wait = 1"]

    def hook(dbapi_conn, _record) -> None:
        for statement in statements:
            cur = dbapi_conn.cursor()
            try:
                cur.execute(statement)
            except Exception:  # noqa: BLE001 - unknown variable; the session still works
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


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
