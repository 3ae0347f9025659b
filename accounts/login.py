"""A committee login attempt, from the password to the session id.

The attempt is claimed on the account row before the password is checked, in ONE UPDATE that
counts it and, at the limit, locks the account (doubling on every repeat lock): concurrent
attempts on one account by any number of app instances get at most ``LOGIN_MAX_FAILURES`` checks
before the lock. The claim is committed before the (slow) check and a failure is kept although
the request fails, so ``attempt`` owns its transactions as a job runner does; the steps inside
take the caller's session like any service.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, case, literal, or_, update
from sqlmodel import Session, col, select

from accounts import sessions, throttle
from accounts.models import SessionEnd, User
from accounts.service import DUMMY_HASH, actor_of, hasher
from accounts.throttle import LockState, lock_duration
from audit import service as audit
from config.settings import Settings
from core import clock
from core.actor import Actor, ActorKind
from core.errors import RateLimited, ValidationFailed
from storage.db import unit_of_work
from storage.types import UTCDateTime

#: a password check waits at most this long for a free slot before the attempt is turned away
VERIFY_WAIT_SECONDS = 10.0
_MAX_LOCK_STEPS = 24


@dataclass(frozen=True)
class LoginResult:
    user_id: int
    username: str
    role: str
    #: the new session's random id, for the signed cookie only
    token: str


@dataclass(frozen=True)
class Claim:
    """An attempt counted against an account (or a name that is none) before its check."""

    name: str
    state: LockState
    user_id: int | None = None
    password_hash: str | None = None
    active: bool = False


def claim(session: Session, name: str, settings: Settings) -> Claim | LockState:
    """Count one attempt on the account ``name``; the locked state when it is refused."""
    row = session.exec(select(User.id, User.password_hash, User.active).where(User.username == name)).first()
    if row is None:
        state, accepted = throttle.phantoms.claim(name, settings)
        return Claim(name, state) if accepted else state
    user_id, password_hash, active = row
    now = clock.now()
    # the WHERE lets only unlocked rows (or rows whose lock has run out) through, so a set
    # locked_until means an expired lock: counting starts again at one
    failures = case((col(User.locked_until).is_not(None), 1), else_=col(User.failed_logins) + 1)
    reaches_limit = failures >= settings.login_max_failures
    lock_ends = case(
        *[(col(User.lockouts) == n, literal(now + lock_duration(n, settings), UTCDateTime()))
          for n in range(_MAX_LOCK_STEPS)],
        else_=literal(now + lock_duration(_MAX_LOCK_STEPS, settings), UTCDateTime()),
    )
    counted = session.execute(
        update(User)
        .where(col(User.id) == user_id, or_(col(User.locked_until).is_(None), col(User.locked_until) <= now))
        .values(
            failed_logins=failures,
            lockouts=case((reaches_limit, col(User.lockouts) + 1), else_=col(User.lockouts)),
            locked_until=case((reaches_limit, lock_ends), else_=literal(None, UTCDateTime())),
        )
        .returning(col(User.failed_logins), col(User.lockouts), col(User.locked_until))
        .execution_options(synchronize_session=False)
    ).first()
    if counted is None:
        locked = session.exec(select(User.failed_logins, User.lockouts, User.locked_until)
                              .where(User.id == user_id)).one()
        return LockState(*locked)
    return Claim(name, LockState(*counted), user_id, password_hash, bool(active))


def verify(password_hash: str | None, password: str, settings: Settings) -> bool:
    """Check the password (against a dummy hash for an unknown name: the same cost), at most
    ``LOGIN_VERIFY_CONCURRENCY`` at once."""
    slots = throttle.verify_slots(settings)
    if not slots.acquire(timeout=VERIFY_WAIT_SECONDS):
        raise RateLimited("the server is busy checking passwords", retry_after=5,
                          message_zh="登录请求较多，请稍后再试")
    try:
        if password_hash is None:
            with contextlib.suppress(VerificationError, InvalidHashError):
                hasher.verify(DUMMY_HASH, password)
            return False
        try:
            return hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    finally:
        slots.release()


def succeed(session: Session, found: Claim, password: str, address: str, previous_token: str | None) -> LoginResult:
    """The password was right: the count and locks start again, and a new session begins."""
    session.execute(update(User).where(col(User.id) == found.user_id)
                    .values(failed_logins=0, lockouts=0, locked_until=None)
                    .execution_options(synchronize_session=False))
    user = session.get(User, found.user_id)
    assert user is not None and user.id is not None
    session.refresh(user)
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
        session.add(user)
    if previous_token:  # session fixation: the browser's old id is never the new session's
        sessions.end(session, previous_token, SessionEnd.REPLACED)
    token = sessions.start(session, user)
    audit.record(session, actor=actor_of(user), action="login",
                 subject=f"user:{user.username}", data={"address": address})
    return LoginResult(user.id, user.username, str(user.role), token)


def fail(session: Session, found: Claim, address: str) -> None:
    """Record a refused password (and the lock it started)."""
    actor = Actor(ActorKind.PUBLIC, address)
    subject = f"user:{found.name[:64]}"
    data: dict[str, Any] = {"address": address, "failures": found.state.failures}
    audit.record(session, actor=actor, action="login_failed", subject=subject, data=data)
    if found.state.locked_until is not None:
        audit.record(session, actor=actor, action="login_locked", subject=subject,
                     data=data | {"until": found.state.locked_until.isoformat()})


def locked_error(until: datetime | None) -> RateLimited:
    retry = int(((until or clock.now()) - clock.now()).total_seconds()) + 1
    minutes = max(1, -(-retry // 60))
    return RateLimited(f"too many failed logins: the account is locked; retry in {retry} s", retry_after=retry,
                       message_zh=f"登录失败次数过多，账户已暂时锁定，请{minutes}分钟后再试")


def attempt(engine: Engine, settings: Settings, username: str, password: str, *, address: str,
            previous_token: str | None = None) -> LoginResult:
    """Log in, or raise RateLimited (address throttled, account locked) or ValidationFailed
    (wrong name or password: the answer never tells which)."""
    throttle.address_limiter(settings).hit(address)
    name = username.strip()[:128]  # no account name is longer; bounds the stand-in locks
    with unit_of_work(engine) as session:
        found = claim(session, name, settings)
    if isinstance(found, LockState):
        raise locked_error(found.locked_until)
    right = verify(found.password_hash, password, settings)
    with unit_of_work(engine) as session:
        if right and found.user_id is not None and found.active:
            return succeed(session, found, password, address, previous_token)
        fail(session, found, address)
    if found.state.locked_until is not None:
        raise locked_error(found.state.locked_until)
    raise ValidationFailed("wrong username or password", message_zh="用户名或密码错误")
