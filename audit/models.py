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


make_append_only(AuditEvent.__table__)  # type: ignore[attr-defined]
