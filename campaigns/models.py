"""The campaign as stored: its row (the validated campaign file), its calendar windows and its
nominating units. The database is the truth for every window: the committee may move them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


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
    #: the plan's row it belongs to ("各镇街"), when the file lists it as a group member
    group: str | None = Field(default=None, max_length=100)
    contact_person: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=50)
    contact_email: str | None = None
    #: added on the dashboard (an association): the campaign file never changes or retires it
    added_by_office: bool = False
    #: contact or quota edited on the dashboard: loading the file again keeps the office's values
    edited_by_office: bool = False
    #: no longer in the campaign file: not offered for new nominations, kept for the ones it has
    retired: bool = False
    #: the unit link: its random seed (the link is a keyed hash of it, so the database alone does
    #: not give the link) and the keyed hash of the link, by which a request finds the unit
    link_seed: str | None = Field(default=None, max_length=64)
    link_hash: str | None = Field(default=None, max_length=64, index=True)
