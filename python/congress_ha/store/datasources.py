"""Reading and writing datasource definitions."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from congress_ha.store.errors import lost_race
from congress_ha.store.models import Datasource, PushedRows

LOST_RACE_TRIES = 5  # a push that keeps losing races is answered 503 (retry)


def list_datasources(sessions: sessionmaker, enabled_only: bool = True) -> list[Datasource]:
    with sessions() as session:
        q = select(Datasource).order_by(Datasource.name)
        if enabled_only:
            q = q.where(Datasource.enabled.is_(True))
        return list(session.execute(q).scalars().all())


def add_datasource(sessions: sessionmaker, name: str, driver: str, config: dict,
                   description: str = "", enabled: bool = True) -> Datasource:
    ds = Datasource(id=str(uuid.uuid4()), name=name, driver=driver, config=config,
                    description=description, enabled=enabled)
    with sessions.begin() as session:
        session.add(ds)
    return ds


def delete_datasource(sessions: sessionmaker, ds_id: str) -> None:
    with sessions.begin() as session:
        ds = session.get(Datasource, ds_id)
        if ds is not None:
            session.delete(ds)
        session.query(PushedRows).filter(PushedRows.datasource == (ds.name if ds else "")
                                         ).delete()


def pushed_rows(sessions: sessionmaker, datasource: str) -> dict[str, tuple[list, int]]:
    """Each table's stored rows and version."""
    with sessions() as session:
        rows = session.execute(select(PushedRows).where(PushedRows.datasource == datasource))
        return {r.table: (list(r.rows), r.version) for r in rows.scalars()}


def pushed_versions(sessions: sessionmaker) -> dict[tuple[str, str], int]:
    """(datasource, table) -> stored version, for every pushed table: the DSD's poll."""
    with sessions() as session:
        rows = session.execute(select(PushedRows.datasource, PushedRows.table,
                                      PushedRows.version))
        return {(ds, table): version for ds, table, version in rows}


class NoSuchDatasource(LookupError):
    """The datasource a push names was deleted meanwhile."""


def save_pushed_rows(sessions: sessionmaker, datasource: str, table: str, rows: list,
                     datasource_id: str | None = None) -> int:
    """Store ``rows`` as the table's content; the new version.

    With ``datasource_id``, the datasource's row is locked first and must still
    exist (NoSuchDatasource): a push racing a delete stores nothing that a
    datasource re-created under the same name would inherit.
    """
    for attempt in range(LOST_RACE_TRIES):
        try:
            try:
                return _save(sessions, datasource, table, rows, datasource_id)
            except IntegrityError:  # two first pushes of one table at once: one inserted
                return _save(sessions, datasource, table, rows, datasource_id)
        except SQLAlchemyError as exc:
            # Galera: a push of the same table through another node was certified
            # first; a push replaces the table whole, so this one simply goes after.
            if not lost_race(exc) or attempt + 1 == LOST_RACE_TRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _save(sessions, datasource, table, rows, datasource_id) -> int:
    with sessions.begin() as session:
        if datasource_id is not None and session.get(
                Datasource, datasource_id, with_for_update=True) is None:
            raise NoSuchDatasource(datasource)
        existing = session.get(PushedRows, (datasource, table), with_for_update=True)
        if existing is None:
            existing = PushedRows(datasource=datasource, table=table, rows=rows, version=1)
            session.add(existing)
        else:
            existing.rows = rows
            existing.version = (existing.version or 0) + 1
        return existing.version
