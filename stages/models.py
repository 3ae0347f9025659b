"""The calendar's due instants, as stored: one row per open, close or reminder step."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import StrEnumType, UTCDateTime


class StepKind(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    REMINDER = "reminder"


class ScheduledStep(SQLModel, table=True):
    """One due instant of the calendar (open, close, reminder). The scheduler only calls
    ``stages.jobs.tick()``, which applies every due row in calendar order and marks it done."""

    __tablename__ = "scheduled_step"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    #: stable name of the step, e.g. "nomination:close" or "nomination:reminder:3"
    key: str = Field(max_length=64)
    stage: str = Field(max_length=32)
    kind: StepKind = Field(sa_type=StrEnumType(StepKind))
    param: int | None = None
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: a step refused by a rule (e.g. shortlist size) is retried from this instant
    retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = None
    late_seconds: float | None = None
