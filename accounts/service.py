"""Committee members: accounts, argon2 password hashes, login, roles and what each role may do.

Services never commit; the caller's unit of work does.
"""

from __future__ import annotations

import contextlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from accounts.models import Role, User
from core import clock
from core.errors import ValidationFailed

_hasher = PasswordHasher()
#: verified against when the username is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not-a-real-password")

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


def may(role: Role, act: str) -> bool:
    return role in ACTS[act]


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"password must have at least {MIN_PASSWORD_LENGTH} characters",
                               message_zh=f"密码至少{MIN_PASSWORD_LENGTH}位")
    return _hasher.hash(password)


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


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (same cost either way)."""
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None or not user.active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
    return user


def active_user(session: Session, user_id: int) -> User | None:
    """The user a login session names, or None once the account is gone or deactivated."""
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.id))))


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    session.add(user)


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
