"""the published tally: receipt hashes and invalidation categories on votes, the published
list's commitment and its corrections

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN: vote refuses DELETE by trigger, so batch mode must not copy it
    op.add_column("vote", sa.Column("invalid_category", sa.String(length=20), nullable=True))
    op.add_column("vote", sa.Column("receipt_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_vote_receipt_hash", "vote", ["receipt_hash"])
    op.create_table(
        "published_tally",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("merkle_root", sa.String(length=64), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id"),
    )
    op.create_table(
        "tally_correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("vote_id", sa.Integer(), nullable=False),
        sa.Column("receipt_hash", sa.String(length=64), nullable=False),
        sa.Column("nomination_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["vote_id"], ["vote.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vote_id"),
    )
    op.create_index("ix_tally_correction_campaign_id", "tally_correction", ["campaign_id"])


def downgrade() -> None:
    op.drop_index("ix_tally_correction_campaign_id", table_name="tally_correction")
    op.drop_table("tally_correction")
    op.drop_table("published_tally")
    op.drop_index("ix_vote_receipt_hash", table_name="vote")
    with op.batch_alter_table("vote") as batch:
        batch.drop_column("receipt_hash")
        batch.drop_column("invalid_category")
