"""Committee members and their roles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from storage.types import StrEnumType, UTCDateTime


class Role(StrEnum):
    OFFICE_ADMIN = "office_admin"
    REVIEWER = "reviewer"
    VETTING_OFFICER = "vetting_officer"


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    display_name: str
    role: Role = Field(sa_type=StrEnumType(Role))
    password_hash: str
    email: str | None = None
    #: the nominating unit this member belongs to: they may not review its nominations
    unit_id: int | None = Field(default=None, foreign_key="nominatingunit.id")
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
