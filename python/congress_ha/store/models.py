"""Tables of the congress-ha database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Datasource(Base):
    """A datasource the DSD runs: a driver and its configuration."""

    __tablename__ = "datasources"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    driver: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class ActionJournal(Base):
    """One row per executed action, written before the action runs."""

    __tablename__ = "action_journal"
    action_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    datasource: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))
    args: Mapped[list] = mapped_column(JSON, default=list)
    leader: Mapped[str] = mapped_column(String(255))
    executor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(16))
    executed_at: Mapped[datetime] = mapped_column(DateTime)
