"""Committee members: accounts, argon2 password hashes, login, roles and what each role may do.

Services never commit; the caller's unit of work does.
"""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from sqlmodel import Session, col, select

from accounts import sessions
from accounts.models import Role, SessionEnd, User
from audit import service as audit
from core import clock
from core.actor import Actor, ActorKind
from core.errors import NotFound, ValidationFailed

hasher = PasswordHasher()
#: verified against when the username is unknown, so a wrong name costs as long as a wrong password
DUMMY_HASH = hasher.hash("not-a-real-password")

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
MIN_PASSWORD_LENGTH = 8

ROLE_LABELS_ZH: dict[Role, str] = {
    Role.OFFICE_ADMIN: "组委会办公室管理员",
    Role.REVIEWER: "遴选审核人员",
    Role.VETTING_OFFICER: "政审考察人员",
}

#: Acts that are not state changes, by role.
ACTS: dict[str, frozenset[Role]] = {
    "view": frozenset(Role),
    "paper": frozenset({Role.OFFICE_ADMIN, Role.REVIEWER}),
    "stages": frozenset({Role.OFFICE_ADMIN}),
    "mail": frozenset({Role.OFFICE_ADMIN}),
    "users": frozenset({Role.OFFICE_ADMIN}),
    "exports": frozenset(Role),
    "audit": frozenset(Role),
    "votes": frozenset({Role.OFFICE_ADMIN}),  # invalidate a vote
}


def actor_of(user: User) -> Actor:
    return Actor(ActorKind.USER, user.username, user.id, str(user.role))


def may(role: Role, act: str) -> bool:
    return role in ACTS[act]


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"password must have at least {MIN_PASSWORD_LENGTH} characters",
                               message_zh=f"密码至少{MIN_PASSWORD_LENGTH}位")
    return hasher.hash(password)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    *,
    display_name: str | None = None,
    email: str | None = None,
    unit_id: int | None = None,
) -> User:
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise ValidationFailed(f"username {username!r}: use 2-64 letters, digits, '.', '_' or '-'",
                               message_zh="用户名须为2至64位字母、数字或 . _ -")
    try:
        role = Role(role)
    except ValueError:
        raise ValidationFailed(f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}") from None
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise ValidationFailed(f"username {username!r} is taken", message_zh="用户名已存在")
    user = User(
        username=username,
        display_name=(display_name or username).strip(),
        role=role,
        password_hash=hash_password(password),
        email=email,
        unit_id=unit_id,
        created_at=clock.now(),
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.id))))


def get_by_username(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None:
        raise NotFound(f"no user {username!r}", message_zh="未找到该用户")
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", message_zh="未找到该用户")
    return user


def set_password(session: Session, user: User, password: str, *, actor: Actor) -> int:
    """A new password; every session of the member ends with the old one. Returns how many did."""
    user.password_hash = hash_password(password)
    session.add(user)
    ended = sessions.end_all(session, user.id or 0, SessionEnd.PASSWORD_CHANGED)
    audit.record(session, actor=actor, action="password_set", subject=f"user:{user.username}",
                 data={"sessions_ended": ended})
    return ended


def set_active(session: Session, user: User, active: bool, *, actor: Actor) -> int:
    """(De)activate a member; deactivating ends every session at once. Returns how many ended."""
    if user.active == active:
        return 0
    user.active = active
    session.add(user)
    ended = sessions.end_all(session, user.id or 0, SessionEnd.DEACTIVATED) if not active else 0
    audit.record(session, actor=actor, action="user_activated" if active else "user_deactivated",
                 subject=f"user:{user.username}", data={"sessions_ended": ended})
    return ended


def end_sessions(session: Session, user: User, *, actor: Actor) -> int:
    """The office admin ends every session of a member (who must log in again)."""
    ended = sessions.end_all(session, user.id or 0, SessionEnd.ENDED_BY_ADMIN)
    audit.record(session, actor=actor, action="sessions_ended", subject=f"user:{user.username}",
                 data={"sessions_ended": ended})
    return ended


def log_out(session: Session, token: str) -> None:
    """End the session with this id (a no-op when it has already ended)."""
    user = sessions.end(session, token, SessionEnd.LOGOUT)
    if user is not None:
        audit.record(session, actor=actor_of(user), action="logout", subject=f"user:{user.username}")


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def ensure_admin(session: Session, username: str, password: str | None) -> str | None:
    """On first start: create the office admin if no office admin exists. Returns the password
    when one was generated (to be shown once), else None."""
    exists = session.exec(select(User).where(User.role == Role.OFFICE_ADMIN.value)).first()
    if exists is not None:
        return None
    generated = None
    if not password:
        password = generated = generate_password()
    create_user(session, username, password, Role.OFFICE_ADMIN, display_name="组委会办公室")
    return generated
