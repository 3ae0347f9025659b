"""hash chain over the trail: chain_seq, prev_hash, row_hash on transition_log and auditevent,
the per-campaign chain_head; existing rows are chained in the order they were written

Revision ID: 0004
Revises: 0003
"""

import hashlib
import heapq
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# a copy of audit.chain's definition as of this revision (a migration never imports the live code)
GENESIS = "0" * 64
FIELDS: dict[str, tuple[str, ...]] = {
    "transition_log": ("campaign_id", "nomination_id", "event", "from_state", "to_state", "version", "actor",
                       "reason", "at", "received_at", "data"),
    "auditevent": ("campaign_id", "at", "actor", "action", "subject", "reason", "data"),
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def _hash(prev: str, table: str, seq: int, row: dict[str, Any]) -> str:
    content = {name: _plain(row.get(name)) for name in FIELDS[table]}
    content["table"], content["chain_seq"] = table, seq
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(b"jingong-chain-v1\n" + prev.encode() + b"\n" + text.encode()).hexdigest()


def _drop_update_triggers(dialect: str, table: str) -> str | None:
    """The trigger refusing UPDATE goes for the backfill; ``storage.migrate.upgrade`` installs it
    again right after the migration (as on every upgrade)."""
    if dialect == "sqlite":
        return f"DROP TRIGGER IF EXISTS {table}_no_update"
    if dialect == "postgresql":
        return f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"
    return None


def upgrade() -> None:
    for table in FIELDS:
        # plain ADD COLUMN: the tables are append-only (triggers), batch mode would copy them
        op.add_column(table, sa.Column("chain_seq", sa.Integer(), nullable=True))
        op.add_column(table, sa.Column("prev_hash", sa.String(length=64), nullable=True))
        op.add_column(table, sa.Column("row_hash", sa.String(length=64), nullable=True))
        op.create_index(f"ix_{table}_chain_seq", table, ["chain_seq"])
    op.create_table(
        "chain_head",
        sa.Column("campaign_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("campaign_key"),
    )
    _backfill()


def _backfill() -> None:
    """Chain the rows already written, per campaign, in the order they were written: each table's rows
    by id (its insertion order), the two tables interleaved by instant."""
    bind = op.get_bind()
    dialect = bind.dialect.name
    meta = sa.MetaData()
    tables = {name: sa.Table(name, meta, autoload_with=bind) for name in FIELDS}
    streams: list[list[tuple[int, datetime, int, str, dict[str, Any]]]] = []
    for name, table in tables.items():
        stream = []
        for row in bind.execute(sa.select(table).order_by(table.c.id)).mappings():
            at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=UTC)
            stream.append((row["campaign_id"] or 0, at, row["id"], name, dict(row)))
        streams.append(stream)
    # per campaign, each table in id order; between the tables the earlier instant first
    by_key: dict[int, list[list[tuple[int, datetime, int, str, dict[str, Any]]]]] = {}
    for index, stream in enumerate(streams):
        for item in stream:
            by_key.setdefault(item[0], [[] for _ in streams])[index].append(item)
    rows = [item for key in sorted(by_key) for item in heapq.merge(*by_key[key], key=lambda r: r[1])]
    if not rows:
        return
    for name in FIELDS:
        statement = _drop_update_triggers(dialect, name)
        if statement:
            op.execute(statement)
    heads: dict[int, tuple[int, str]] = {}
    for key, _, row_id, name, row in rows:
        seq, prev = heads.get(key, (0, GENESIS))
        seq += 1
        if isinstance(row["data"], str):
            row["data"] = json.loads(row["data"])
        digest = _hash(prev, name, seq, row)
        table = tables[name]
        bind.execute(table.update().where(table.c.id == row_id)
                     .values(chain_seq=seq, prev_hash=prev, row_hash=digest))
        heads[key] = (seq, digest)
    head = sa.table("chain_head", sa.column("campaign_key"), sa.column("seq"), sa.column("head_hash"))
    bind.execute(head.insert(), [{"campaign_key": k, "seq": s, "head_hash": h} for k, (s, h) in heads.items()])


def downgrade() -> None:
    op.drop_table("chain_head")
    for table in FIELDS:
        op.drop_index(f"ix_{table}_chain_seq", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("row_hash")
            batch.drop_column("prev_hash")
            batch.drop_column("chain_seq")
