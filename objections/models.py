"""The objection table: one row per objection lodged on the public notice, with its ruling."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from storage.types import StrEnumType, UTCDateTime


class ObjectionStatus(StrEnum):
    OPEN = "open"  # lodged, the committee has not ruled
    UPHELD = "upheld"  # the candidate is disqualified
    DISMISSED = "dismissed"  # the candidate is back on course


class Objection(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    nomination_id: int = Field(foreign_key="nomination.id", index=True)
    #: who objects, and how to reach them (an email address gets an acknowledgement)
    name: str = Field(max_length=64)
    contact: str = Field(max_length=128)
    facts: str = Field(sa_column=Column(Text, nullable=False))
    status: ObjectionStatus = Field(sa_type=StrEnumType(ObjectionStatus), default=ObjectionStatus.OPEN)
    lodged_at: datetime = Field(sa_type=UTCDateTime)
    #: the nominee is asked to reply by then
    reply_due_at: datetime = Field(sa_type=UTCDateTime)
    nominee_reply: str | None = Field(default=None, sa_column=Column(Text))
    replied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ruled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ruled_by: str | None = Field(default=None, max_length=128)
    ruling_reason: str | None = Field(default=None, sa_column=Column(Text))
    #: the objector's receipt number, stored only as a keyed hash (``objections.receipts``)
    receipt_hash: str | None = Field(default=None, max_length=64, index=True)
