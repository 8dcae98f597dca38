"""Reading and writing datasource definitions."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from congress_ha.store.models import Datasource, PushedRows


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


def pushed_rows(sessions: sessionmaker, datasource: str) -> dict[str, list]:
    with sessions() as session:
        rows = session.execute(select(PushedRows).where(PushedRows.datasource == datasource))
        return {r.table: list(r.rows) for r in rows.scalars()}


def save_pushed_rows(sessions: sessionmaker, datasource: str, table: str, rows: list) -> None:
    with sessions.begin() as session:
        existing = session.get(PushedRows, (datasource, table))
        if existing is None:
            session.add(PushedRows(datasource=datasource, table=table, rows=rows))
        else:
            existing.rows = rows
