"""nominating units as parties: contact person, phone, the unit link, the office's own units

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nominatingunit") as batch:
        batch.add_column(sa.Column("group", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch.add_column(sa.Column("contact_person", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True))
        batch.add_column(sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True))
        batch.add_column(sa.Column("added_by_office", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("edited_by_office", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("retired", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("link_seed", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("link_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.create_index("ix_nominatingunit_link_hash", ["link_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nominatingunit") as batch:
        batch.drop_index("ix_nominatingunit_link_hash")
        for column in ("link_hash", "link_seed", "retired", "edited_by_office", "added_by_office", "phone",
                       "contact_person", "group"):
            batch.drop_column(column)
