"""Verifying a voter: a one-time code sent to their email address or phone, checked against its
keyed hash, with the lock that grows after repeated wrong codes."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from campaigns import service as campaigns
from config.secrets import keyed_hash, pepper
from config.settings import Settings, get_settings
from core import clock
from core.errors import RateLimited, ValidationFailed
from notifications import context as mail_context
from notifications import queue as mail_queue
from notifications.models import MailTemplate
from storage.db import UnitOfWork, unit_of_work
from voting.identities import address_hashes, issue_token, normalise
from voting.limits import limiters
from voting.models import IdentityKind, VoteCode, VoterIdentity
from voting.monitor import minute_of
from voting.sms import get_gateway
from voting.windows import check_open

#: wrong codes in a row before the identity locks; each further failure doubles the lock
LOCK_AFTER = 5
LOCK_BASE_SECONDS = 60


@dataclass(frozen=True)
class CodeSent:
    kind: IdentityKind
    masked: str
    expires_at: datetime


def _identity(session: Session, campaign_id: int, identity_hash: str) -> VoterIdentity | None:
    """The identity row, locked for the rest of the transaction (``FOR UPDATE`` on PostgreSQL;
    SQLite's ``BEGIN IMMEDIATE`` already serialises writers): the lock check, the code check and
    the failure count of concurrent tries for one address happen one after another, so no more
    guesses are checked than the lock allows."""
    return session.exec(select(VoterIdentity)
                        .where(VoterIdentity.campaign_id == campaign_id, VoterIdentity.identity_hash == identity_hash)
                        .with_for_update().execution_options(populate_existing=True)).first()


def _ensure_identity(session: Session, campaign_id: int, kind: IdentityKind, identity_hash: str, now: datetime,
                     net_hash: str) -> VoterIdentity:
    """The identity row, created if new, locked: two first requests for one address at once
    create it once (the second insert does nothing) instead of one failing on the unique key."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = VoterIdentity.__table__  # type: ignore[attr-defined]
    session.execute(insert(table).values(
        campaign_id=campaign_id, kind=kind.value, identity_hash=identity_hash, created_at=now,
        created_minute=minute_of(now), created_net_hash=net_hash, failures=0,
    ).on_conflict_do_nothing(index_elements=["campaign_id", "identity_hash"]))
    identity = _identity(session, campaign_id, identity_hash)
    assert identity is not None
    return identity


def _count_failure(session: Session, identity: VoterIdentity, now: datetime) -> tuple[int, int | None]:
    """One more wrong code, counted by the database (``failures = failures + 1``), and the lock it
    earns from the fifth on: (failures, lock seconds or None)."""
    table = VoterIdentity.__table__  # type: ignore[attr-defined]
    failures = int(session.execute(update(table).where(table.c.id == identity.id)
                                   .values(failures=table.c.failures + 1).returning(table.c.failures)).scalar_one())
    lock = LOCK_BASE_SECONDS * 2 ** (failures - LOCK_AFTER) if failures >= LOCK_AFTER else None
    if lock is not None:
        session.execute(update(table).where(table.c.id == identity.id)
                        .values(locked_until=now + timedelta(seconds=lock)))
    session.expire(identity)
    return failures, lock


def _check_lock(identity: VoterIdentity, now: datetime) -> None:
    if identity.locked_until is not None and identity.locked_until > now:
        wait = int((identity.locked_until - now).total_seconds()) + 1
        raise RateLimited(f"too many wrong codes: this address is locked for {wait} s", retry_after=wait,
                          message_zh=f"验证码错误次数过多，请{wait}秒后再试")


def _identity_hash(kind: IdentityKind, address: str, settings: Settings) -> str:
    return keyed_hash(f"{kind}:{address}", settings)


def _code_hash(identity_id: int | None, code: str, settings: Settings) -> str:
    """A code is stored keyed to its identity, so a code sent to one voter proves nothing for another."""
    return keyed_hash(f"code:{identity_id}:{code}", settings)


def _mask(kind: IdentityKind, address: str) -> str:
    if kind is IdentityKind.PHONE:
        return address[:3] + "****" + address[-4:]
    name, _, domain = address.partition("@")
    return f"{name[:1]}***@{domain}"


def request_code(engine: Engine, campaign_id: int, kind: IdentityKind | str, address: str, ip: str,
                 settings: Settings | None = None) -> CodeSent:
    """Send a one-time code to an email address (through the outbox) or a phone (SMS gateway)."""
    settings = settings or get_settings()
    kind, address = normalise(kind, address)
    ip_hash, net_hash = address_hashes(ip, pepper(settings))
    limiters(settings).codes.hit(ip_hash)
    identity_hash = _identity_hash(kind, address, settings)
    now = clock.now()
    code = f"{secrets.randbelow(10**6):06d}"
    with unit_of_work(engine) as session:
        check_open(session, campaign_id, now)
        identity = _ensure_identity(session, campaign_id, kind, identity_hash, now, net_hash)
        _check_lock(identity, now)
        last = session.exec(select(VoteCode).where(VoteCode.identity_id == identity.id)
                            .order_by(col(VoteCode.id).desc())).first()
        if last is not None and settings.vote_code_interval_seconds:
            wait = int(settings.vote_code_interval_seconds - (now - last.created_at).total_seconds()) + 1
            if wait > 1:
                raise RateLimited(f"a code was sent moments ago; ask again in {wait} s", retry_after=wait,
                                  message_zh=f"验证码已发送，请{wait}秒后再重新获取")
        expires = now + timedelta(seconds=settings.vote_code_ttl_seconds)
        record = VoteCode(identity_id=identity.id or 0, code_hash=_code_hash(identity.id, code, settings),
                          created_at=now, expires_at=expires)
        session.add(record)
        session.flush()
        campaign = campaigns.get_campaign_by_id(session, campaign_id)
        spec = campaigns.spec_of(campaign)
        minutes = settings.vote_code_ttl_seconds // 60
        if kind is IdentityKind.EMAIL:
            mail_queue.queue_mail(session, key=f"vote-code:{record.id}", template=MailTemplate.VOTE_CODE,
                                  recipients=[address], campaign_id=campaign_id, fetch=False,
                                  context={**mail_context.campaign_context(spec), "code": code, "minutes": minutes})
        else:
            text = f"【{spec.award_name}】投票验证码{code}，{minutes}分钟内有效。如非本人操作请忽略。"
            gateway = get_gateway(settings)
            assert isinstance(session, UnitOfWork)
            session._after_commit.append(lambda: gateway.send(address, text))
    return CodeSent(kind, _mask(kind, address), expires)


def confirm_code(engine: Engine, campaign_id: int, kind: IdentityKind | str, address: str, code: str,
                 ip: str, settings: Settings | None = None) -> str:
    """Check a code; on success return the voter's signed token. A wrong code counts towards the
    lock (committed even though the call fails)."""
    settings = settings or get_settings()
    kind, address = normalise(kind, address)
    limiters(settings).codes.hit(address_hashes(ip, pepper(settings))[0])
    identity_hash = _identity_hash(kind, address, settings)
    now = clock.now()
    failure: Exception | None = None
    with unit_of_work(engine) as session:
        identity = _identity(session, campaign_id, identity_hash)
        if identity is None:
            raise ValidationFailed("ask for a code first", message_zh="请先获取验证码")
        _check_lock(identity, now)
        current = session.exec(select(VoteCode).where(VoteCode.identity_id == identity.id,
                                                      col(VoteCode.used_at).is_(None),
                                                      VoteCode.expires_at > now)
                               .order_by(col(VoteCode.id).desc())).first()
        supplied = re.sub(r"\s", "", code or "")
        if current is not None and hmac.compare_digest(current.code_hash,
                                                       _code_hash(identity.id, supplied, settings)):
            current.used_at = now
            identity.failures = 0
            identity.locked_until = None
            identity.verified_at = identity.verified_at or now
            session.add_all([current, identity])
            return issue_token(campaign_id, identity.id or 0, settings)
        failures, lock = _count_failure(session, identity, now)
        if lock is not None:
            failure = RateLimited(f"wrong code {failures} times: locked for {lock} s", retry_after=lock,
                                  message_zh=f"验证码错误次数过多，请{lock}秒后再试")
        elif current is None:
            failure = ValidationFailed("no valid code: it expired or was used; ask for a new one",
                                       message_zh="验证码已失效，请重新获取")
        else:
            failure = ValidationFailed(f"wrong code ({LOCK_AFTER - failures} tries left)",
                                       message_zh=f"验证码错误，还可尝试{LOCK_AFTER - failures}次")
    raise failure
