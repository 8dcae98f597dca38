"""Opening the database: one engine per process, schema created on first use."""

from __future__ import annotations

from sqlalchemy import create_engine, event
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
        Base.metadata.create_all(engine)
    except ArgumentError as exc:
        raise StoreError(f"[database] connection {url!r} is not a valid SQLAlchemy URL: "
                         f"{exc}") from None
    except (SQLAlchemyError, ModuleNotFoundError) as exc:
        first = str(exc).splitlines()[0]
        raise StoreError(f"cannot open the database ([database] connection): {first}") from None
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
