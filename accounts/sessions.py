"""Committee login sessions kept on the server: the signed cookie carries only a random id, this
table its hash. Logout, a password change, deactivation, the office admin and the idle and absolute
timeouts end them; an ended session is refused at once by every app instance.

Services never commit; the caller's unit of work does.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select, update

from accounts.models import LoginSession, SessionEnd, User
from config.settings import Settings
from core import clock
from storage.db import writable

#: last_seen_at is written at most this often per session (not on every request)
TOUCH_INTERVAL = timedelta(seconds=60)


def token_hash(token: str) -> str:
    # the id is 256 random bits: a plain hash is enough to make a stolen table useless
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start(session: Session, user: User) -> str:
    """A new session for ``user``; returns the random id for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(LoginSession(token_hash=token_hash(token), user_id=user.id or 0, created_at=now, last_seen_at=now))
    session.flush()
    return token


def _end_reason(row: LoginSession, now: datetime, settings: Settings) -> SessionEnd | None:
    if now - row.created_at >= timedelta(seconds=settings.session_max_age_seconds):
        return SessionEnd.EXPIRED
    if now - row.last_seen_at >= timedelta(seconds=settings.session_idle_seconds):
        return SessionEnd.IDLE
    return None


def resolve(session: Session, token: str, settings: Settings) -> User | None:
    """The active member whose live session has this id, or None. A session past its idle or
    absolute timeout is ended; a live one is marked seen (at most once a minute)."""
    row = session.exec(select(LoginSession).where(LoginSession.token_hash == token_hash(token))).first()
    if row is None or row.ended_at is not None:
        return None
    now = clock.now()
    reason = _end_reason(row, now, settings)
    if reason is not None:
        with writable(session) as writer:
            writer.execute(update(LoginSession).where(col(LoginSession.id) == row.id)
                           .values(ended_at=now, ended_reason=reason).execution_options(synchronize_session=False))
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        with writable(session) as writer:
            writer.execute(update(LoginSession).where(col(LoginSession.id) == row.id)
                           .values(last_seen_at=now).execution_options(synchronize_session=False))
    return user


def end(session: Session, token: str, reason: SessionEnd = SessionEnd.LOGOUT) -> User | None:
    """End the session with this id (if live); returns its member, or None."""
    row = session.exec(select(LoginSession).where(LoginSession.token_hash == token_hash(token))).first()
    if row is None or row.ended_at is not None:
        return None
    _end_rows(session, [row], reason, clock.now())
    return session.get(User, row.user_id)


def end_all(session: Session, user_id: int, reason: SessionEnd) -> int:
    """End every live session of a member in one statement; returns how many were live."""
    result = session.execute(
        update(LoginSession)
        .where(col(LoginSession.user_id) == user_id, col(LoginSession.ended_at).is_(None))
        .values(ended_at=clock.now(), ended_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def live_counts(session: Session) -> dict[int, int]:
    """Live (not ended) sessions per member; timed-out ones count until they are next used."""
    rows = session.exec(select(LoginSession.user_id).where(col(LoginSession.ended_at).is_(None)))
    counts: dict[int, int] = {}
    for user_id in rows:
        counts[user_id] = counts.get(user_id, 0) + 1
    return counts


def _end_rows(session: Session, rows: list[LoginSession], reason: SessionEnd, now: datetime) -> None:
    for row in rows:
        row.ended_at = now
        row.ended_reason = reason
        session.add(row)
