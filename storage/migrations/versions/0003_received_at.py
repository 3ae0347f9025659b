"""the instant an act arrived, beside the instant it was written

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN on both databases: the table is append-only (triggers), so it must not be
    # copied and recreated the way batch mode alters SQLite tables
    op.add_column("transition_log", sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transition_log") as batch:
        batch.drop_column("received_at")
