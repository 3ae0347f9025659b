"""the candidate's 编号, stored when voting opens so that it never moves

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nomination") as batch:
        batch.add_column(sa.Column("ballot_number", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nomination") as batch:
        batch.drop_column("ballot_number")
