"""Tables of the congress-ha database, as the newest migration leaves them.

A change here needs a revision in store/migrations/ too (its README says how); the
schema tests check that the two agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# MariaDB's DATETIME drops the fraction unless asked: rules of one second would
# then list in random order (they sort by created_at).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


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
    executed_at: Mapped[datetime] = mapped_column(Timestamp)


class PolicyRevision(Base):
    """One row: bumped by every policy or rule change, in the same transaction.

    A writer updates it with ``WHERE revision = <the revision it validated
    against>``; zero rows updated means another API node changed the policies
    meanwhile, so the change is validated again on the new state.
    """

    __tablename__ = "policy_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class Policy(Base):
    __tablename__ = "policies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    abbreviation: Mapped[str] = mapped_column(String(5), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[str] = mapped_column(String(255), default="user")
    kind: Mapped[str] = mapped_column(String(32), default="nonrecursive")
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class Rule(Base):
    __tablename__ = "rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(36),
                                           ForeignKey("policies.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class LibraryPolicy(Base):
    """A policy kept for later use; not evaluated until activated."""

    __tablename__ = "library_policies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    abbreviation: Mapped[str] = mapped_column(String(5), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32), default="nonrecursive")
    rules: Mapped[list] = mapped_column(JSON, default=list)


class PushedRows(Base):
    """The rows last pushed into one table of a push datasource.

    ``version`` goes up by one with every push: the DSD publishes a table again
    when the stored version is ahead of the one it published (the API stores
    pushes itself, so they are taken while no DSD or no broker answers).
    """

    __tablename__ = "pushed_rows"
    datasource: Mapped[str] = mapped_column(String(255), primary_key=True)
    table: Mapped[str] = mapped_column("table_name", String(255), primary_key=True)
    rows: Mapped[list] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
