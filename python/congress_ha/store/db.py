"""Opening the database: one engine per process, schema created on first use."""

from __future__ import annotations

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
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


# Every api-pe clone instance starts at once and creates the schema: on
# PostgreSQL two CREATE TABLEs of one name collide (pg_type unique index), so
# creation runs under a transaction-scoped advisory lock, one node at a time.
_SCHEMA_LOCK = 0x636F6E67  # "cong"


def create_schema(engine: Engine) -> None:
    """Create missing tables; safe when several processes do it at once."""
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
                Base.metadata.create_all(conn)
            return
        except OperationalError as exc:
            # SQLite: another process created a table between check and create.
            if "already exists" not in str(exc) or attempt == 2:
                raise


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
