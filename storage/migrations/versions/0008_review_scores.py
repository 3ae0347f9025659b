"""reviewers' scores per criterion (综合评审评分); an index for the committee lists

Revision ID: 0008
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reviewscore",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("nomination_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("criterion", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["nomination_id"], ["nomination.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nomination_id", "reviewer_id", "criterion"),
    )
    with op.batch_alter_table("reviewscore", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviewscore_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviewscore_nomination_id"), ["nomination_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviewscore_reviewer_id"), ["reviewer_id"], unique=False)
    op.create_index("ix_nomination_campaign_unit_submitted", "nomination",
                    ["campaign_id", "unit_id", "submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_nomination_campaign_unit_submitted", table_name="nomination")
    with op.batch_alter_table("reviewscore", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviewscore_reviewer_id"))
        batch_op.drop_index(batch_op.f("ix_reviewscore_nomination_id"))
        batch_op.drop_index(batch_op.f("ix_reviewscore_campaign_id"))
    op.drop_table("reviewscore")
