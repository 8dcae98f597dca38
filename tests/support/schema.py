"""Helpers of the schema tests: what a database's schema lacks against the models, a
database made the way releases before migrations made it, a migrations folder one
revision ahead of the package's, and a revision this code does not know."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text

from congress_ha.store.db import normalize_url
from congress_ha.store.models import Base, Policy, PolicyRevision, Rule
from congress_ha.store.schema import MIGRATIONS

UNKNOWN_REVISION = "9f3c1e2d7a55"  # what a newer release's revision looks like

NEXT_REVISION = '''"""A test revision: one nullable column more in pushed_rows."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pushed_rows", sa.Column("pushed_at", sa.DateTime, nullable=True))
'''


def _engine(url: str):
    return create_engine(normalize_url(url))


def differences(url: str) -> list:
    """What Alembic's autogenerate would change to make the database match Base.metadata.

    It does not compare MariaDB's DATETIME precision (fsp): the schema tests check
    that apart."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def versions(url: str) -> list[str]:
    """The rows of alembic_version ([] if it has none or there is no such table)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return []
            return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def set_version(url: str, revision: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def create_like_before_migrations(url: str) -> None:
    """Base.metadata.create_all and the seed row, as open_engine did before migrations,
    and a policy with one rule, so that a test sees whether the data survives."""
    engine = _engine(url)
    now = datetime(2026, 1, 2, 3, 4, 5, 678901)
    try:
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
            conn.execute(insert(PolicyRevision).values(id=1, revision=7))
            conn.execute(insert(Policy).values(id="p1", name="kept", abbreviation="kept",
                                               description="", owner_id="user",
                                               kind="nonrecursive", created_at=now))
            conn.execute(insert(Rule).values(id="r1", policy_id="p1", rule="p(x) :- q(x)",
                                             name="", comment="", created_at=now))
    finally:
        engine.dispose()


def stored(url: str) -> tuple[int, list[str], list[datetime]]:
    """(policy revision, rule texts, rule times) as the database holds them."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return (conn.execute(select(PolicyRevision.revision)).scalar_one(),
                    list(conn.execute(select(Rule.rule)).scalars()),
                    list(conn.execute(select(Rule.created_at)).scalars()))
    finally:
        engine.dispose()


def migrations_one_ahead(base: Path) -> Path:
    """A copy of the package's migrations with a revision 0002 added: the code of a
    release newer than the database, for the "older database" cases."""
    folder = base / "migrations"
    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "0002_test_column.py").write_text(NEXT_REVISION)
    return folder


def columns(url: str, table: str) -> list[str]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [c["name"] for c in inspect(conn).get_columns(table)]
    finally:
        engine.dispose()
