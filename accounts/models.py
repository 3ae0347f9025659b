"""Committee members, their roles, their login failures and their login sessions."""

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
    #: login attempts since the last success or lock (claimed before the password is checked)
    failed_logins: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    #: locks so far without a successful login in between: each doubles the next lock
    lockouts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SessionEnd(StrEnum):
    LOGOUT = "logout"
    IDLE = "idle"
    EXPIRED = "expired"  # the absolute timeout
    PASSWORD_CHANGED = "password_changed"
    DEACTIVATED = "deactivated"
    ENDED_BY_ADMIN = "ended_by_admin"
    REPLACED = "replaced"  # a new login from the same browser


class LoginSession(SQLModel, table=True):
    """A committee member's login: the cookie carries the random id, the table only its hash."""

    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_reason: SessionEnd | None = Field(default=None, sa_type=StrEnumType(SessionEnd))
