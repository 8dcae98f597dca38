"""Opening the database: one engine per process, schema created on first use."""

from __future__ import annotations

import fcntl

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from congress_ha.store.models import Base


class StoreError(Exception):
    """The database could not be opened or used; the message says why."""


def open_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(conn, _record):  # pragma: no cover - trivial
                cur = conn.cursor()
                # WAL lets readers and one writer of several processes overlap.
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()
        else:
            engine = create_engine(url, pool_pre_ping=True)
        create_schema(engine)
    except ArgumentError as exc:
        raise StoreError(f"[database] connection {url!r} is not a valid SQLAlchemy URL: "
                         f"{exc}") from None
    except (SQLAlchemyError, ModuleNotFoundError) as exc:
        first = str(exc).splitlines()[0]
        raise StoreError(f"cannot open the database ([database] connection): {first}") from None
    return engine


# Every api-pe clone instance starts at once and creates the schema: two
# CREATE TABLEs of one name collide (PostgreSQL: pg_type's unique index;
# SQLite: "already exists"), so creation runs one process at a time.
_SCHEMA_LOCK = 0x636F6E67  # "cong"


def create_schema(engine: Engine) -> None:
    """Create missing tables; safe when several processes do it at once."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # SQLite has no advisory locks: a lock file beside the database.
        with open(f"{engine.url.database}.schema-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                Base.metadata.create_all(engine)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        Base.metadata.create_all(conn)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
