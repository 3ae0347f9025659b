"""The transition log: one row per state change, written with it, never edited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from storage.append_only import make_append_only
from storage.types import UTCDateTime


class TransitionRecord(SQLModel, table=True):
    __tablename__ = "transition_log"

    id: int | None = Field(default=None, primary_key=True)
    nomination_id: int = Field(foreign_key="nomination.id", index=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    event: str = Field(max_length=32)
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    #: the nomination's version after this change
    version: int
    actor: str
    reason: str | None = None
    #: when the change was written
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    #: when the act that made it arrived (``core.clock.received``): what the clock's edges judged,
    #: and what the status page and the audit trail show
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: the hash chain (``audit.chain``), shared with the audit events of the same campaign
    chain_seq: int | None = Field(default=None, index=True)
    prev_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64)


make_append_only(TransitionRecord.__table__)  # type: ignore[attr-defined]
