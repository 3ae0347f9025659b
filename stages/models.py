"""The campaign and its calendar, as stored. The database is the truth for every window."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import StrEnumType, UTCDateTime


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    name: str
    award_name: str
    edition: int
    timezone: str = Field(max_length=64)
    #: the validated campaign file, as loaded (counts, quotas, rules, office contacts)
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)


class Stage(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    name: str = Field(max_length=32)
    title: str
    position: int
    opens_at: datetime = Field(sa_type=UTCDateTime)
    closes_at: datetime = Field(sa_type=UTCDateTime)
    #: when the open/close steps actually ran (None: not yet)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NominatingUnit(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    name: str
    category: str
    quota: int
    contact_email: str | None = None


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
