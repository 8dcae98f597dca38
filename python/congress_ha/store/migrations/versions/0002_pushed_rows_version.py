"""pushed_rows.version: every push stores a new version, and the DSD publishes a
table whose stored version is ahead of the one it published (API nodes store
pushes themselves, so a push is taken while no DSD or no broker answers).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Expand only: rows of the release before get 0, which the first push bumps;
    # that release's DSD never reads the column.
    with op.batch_alter_table("pushed_rows") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    raise NotImplementedError("congress-ha migrations go forward only: restore a backup")
