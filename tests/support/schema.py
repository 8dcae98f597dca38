"""Helpers of the schema tests: what a database's schema lacks against the models, a
database made the way releases before migrations made it, a migrations folder one
revision ahead of the package's, and a revision this code does not know."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Integer,
    String,
    column,
    create_engine,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import table as table_of

from congress_ha.store import schema
from congress_ha.store.db import normalize_url
from congress_ha.store.models import Base, Policy, PolicyRevision, Rule

# The package's own migrations, read once at import: the tests that monkeypatch
# schema.MIGRATIONS (to migrations_one_ahead's copy) still compare with these.
MIGRATIONS = schema.MIGRATIONS
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # this code's newest revision

UNKNOWN_REVISION = "9f3c1e2d7a55"  # what a newer release's revision looks like

# migrations_one_ahead's extra revision: an id no real revision takes (they count up
# from 0001), on top of whatever the package's head is now.
NEXT = "9001"
NEXT_REVISION = f'''"""A test revision: one nullable column more in pushed_rows."""

import sqlalchemy as sa
from alembic import op

revision = "{NEXT}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pushed_rows", sa.Column("pushed_at", sa.DateTime, nullable=True))
'''

# pushed_rows as revision 0001 made it (the model has columns later revisions added).
PUSHED_ROWS_0001 = table_of("pushed_rows", column("datasource", String),
                            column("table_name", String), column("rows", JSON))
PUSHED = ("hosts", "up", [{"name": "h1"}, {"name": "h2"}])  # one row of pushed_rows


def _engine(url: str):
    return create_engine(normalize_url(url))


def differences(url: str) -> list:
    """What Alembic's autogenerate would change to make the database match Base.metadata,
    server defaults included (pushed_rows.version's "0": models.py and 0002 agree).

    It does not compare MariaDB's DATETIME precision (fsp): the schema tests check
    that apart."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_server_default": True})
            return compare_metadata(context, Base.metadata)
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


def create_at_baseline(url: str, stamped: bool = True) -> None:
    """A database with revision 0001's schema and no more, and data in it, so that a
    test sees whether the data survives: policy revision 7, a policy with one rule,
    a pushed table (PUSHED).  ``stamped=False``: without alembic_version, as the
    releases before migrations left it (their create_all made 0001's schema)."""
    engine = _engine(url)
    now = datetime(2026, 1, 2, 3, 4, 5, 678901)
    config = schema._config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")  # its seed row too: policy revision 0
            if not stamped:
                conn.execute(text("DROP TABLE alembic_version"))
            conn.execute(update(PolicyRevision).where(PolicyRevision.id == 1)
                         .values(revision=7))
            conn.execute(insert(Policy).values(id="p1", name="kept", abbreviation="kept",
                                               description="", owner_id="user",
                                               kind="nonrecursive", created_at=now))
            conn.execute(insert(Rule).values(id="r1", policy_id="p1", rule="p(x) :- q(x)",
                                             name="", comment="", created_at=now))
            datasource, table, rows = PUSHED
            conn.execute(insert(PUSHED_ROWS_0001).values(datasource=datasource,
                                                         table_name=table, rows=rows))
            conn.commit()
    finally:
        engine.dispose()


def create_like_before_migrations(url: str) -> None:
    """What open_engine made before migrations: 0001's schema, no alembic_version."""
    create_at_baseline(url, stamped=False)


def pushed(url: str) -> list[tuple]:
    """The rows of pushed_rows: (datasource, table, rows, version); version None if
    the table has no such column (revision 0001)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            versioned = "version" in {c["name"] for c in inspect(conn).get_columns("pushed_rows")}
            t = table_of("pushed_rows", column("datasource", String),
                         column("table_name", String), column("rows", JSON),
                         *([column("version", Integer)] if versioned else []))
            return [(r.datasource, r.table_name, r.rows, r.version if versioned else None)
                    for r in conn.execute(select(t).order_by(t.c.datasource, t.c.table_name))]
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
    """A copy of the package's migrations with revision NEXT on top of HEAD: the code
    of a release newer than the database, for the "older database" cases."""
    folder = base / "migrations"
    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / f"{NEXT}_test_column.py").write_text(NEXT_REVISION)
    return folder


def columns(url: str, table: str) -> list[str]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [c["name"] for c in inspect(conn).get_columns(table)]
    finally:
        engine.dispose()
