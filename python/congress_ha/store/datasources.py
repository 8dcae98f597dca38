"""Reading and writing datasource definitions."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from congress_ha.store.models import Datasource


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
