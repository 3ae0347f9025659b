"""The audit trail of acts that are not a nomination's state change (stage opened by hand,
window moved, mail released...). Append-only, like the transition log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from storage.append_only import make_append_only
from storage.types import UTCDateTime


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str
    action: str = Field(index=True, max_length=64)
    subject: str = ""
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: the hash chain (``audit.chain``): place in the campaign's trail, the previous row's hash, this row's
    chain_seq: int | None = Field(default=None, index=True)
    prev_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64)


make_append_only(AuditEvent.__table__)  # type: ignore[attr-defined]


class ChainHead(SQLModel, table=True):
    """The head of one campaign's hash chain (``audit.chain``): the last sequence number given out
    and the hash of that row. Appenders lock this row, so one campaign's trail grows one row at a
    time. Campaign-less events (``campaign_id`` NULL) chain under key 0."""

    __tablename__ = "chain_head"

    campaign_key: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    head_hash: str = Field(max_length=64)
