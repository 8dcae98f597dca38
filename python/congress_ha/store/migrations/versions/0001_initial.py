"""The schema of the releases before migrations (Base.metadata.create_all), and
its one seed row.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# MariaDB's DATETIME drops the fraction unless asked, and rules sort by created_at.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "datasources",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("driver", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "action_journal",
        sa.Column("action_id", sa.String(64), primary_key=True),
        sa.Column("datasource", sa.String(255), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("leader", sa.String(255), nullable=False),
        sa.Column("executor", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("executed_at", Timestamp, nullable=False),
    )
    policy_revision = op.create_table(
        "policy_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("abbreviation", sa.String(5), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("policy_id", sa.String(36),
                  sa.ForeignKey("policies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_table(
        "library_policies",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("abbreviation", sa.String(5), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "pushed_rows",
        sa.Column("datasource", sa.String(255), primary_key=True),
        sa.Column("table_name", sa.String(255), primary_key=True),
        sa.Column("rows", sa.JSON, nullable=False),
    )
    # Every writer bumps this row (store/policies.py); it exists from the start.
    # The check keeps the seed idempotent, as create_all's seed was.
    seeded = op.get_bind().execute(
        sa.select(policy_revision.c.id).where(policy_revision.c.id == 1)).first()
    if seeded is None:
        op.bulk_insert(policy_revision, [{"id": 1, "revision": 0}])


def downgrade() -> None:
    raise NotImplementedError("congress-ha's migrations only expand the schema and are "
                              "never undone: restore a backup to go back")
