"""an objection's receipt number, kept as a keyed hash

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("objection", sa.Column("receipt_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_objection_receipt_hash", "objection", ["receipt_hash"])


def downgrade() -> None:
    op.drop_index("ix_objection_receipt_hash", table_name="objection")
    with op.batch_alter_table("objection") as batch:
        batch.drop_column("receipt_hash")
