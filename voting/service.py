"""Public voting: verify a voter, cast a vote, keep the tally honest.

Rules (campaign file, ``[voting]``): by default one vote per verified voter per candidate per
calendar day in the campaign's time zone, at most N candidates per voter per day. The window is the
voting stage's, enforced by the clock at every vote. Each vote is one row written in the same
transaction as the live counter; ``verify`` recomputes the tally from the rows. The committee
invalidates a vote (never deletes it); suspicious patterns become flags, nothing is dropped.
At the voting close the tally is frozen and handed to the review board.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from sqlalchemy import Engine, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns import service as campaigns
from campaigns.models import Campaign, Stage
from config.campaign import StageName
from config.secrets import keyed_hash, pepper
from config.settings import Settings, get_settings
from core import clock
from core.actor import Actor
from core.errors import (
    Conflict,
    DeadlinePassed,
    GuardFailed,
    NotAuthenticated,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from nominations.models import Nomination
from nominations.service import EMAIL_RE
from nominations.states import State
from notifications import context as mail_context
from notifications import queue as mail_queue
from notifications.models import MailTemplate
from stages import jobs
from storage.db import UnitOfWork, unit_of_work
from voting.limits import RateLimiter
from voting.models import (
    FlagKind,
    FrozenTally,
    IdentityKind,
    Vote,
    VoteCode,
    VoteCounter,
    VoteFlag,
    VoterDay,
    VoterIdentity,
)
from voting.sms import get_gateway

#: a mainland mobile number (landlines receive no SMS codes)
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
#: wrong codes in a row before the identity locks; each further failure doubles the lock
LOCK_AFTER = 5
LOCK_BASE_SECONDS = 60
#: how long a cached voting window or candidate list is trusted (refusals always re-read)
CACHE_SECONDS = 2.0


# --- hashing and tokens ------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _address_hashes(ip: str, key: bytes) -> tuple[str, str]:
    """The hashed address and hashed network of a client (a crowd repeats its addresses)."""
    address = hmac.new(key, f"ip:{ip}".encode(), hashlib.sha256).hexdigest()[:40]
    network = hmac.new(key, f"net:{network_of(ip)}".encode(), hashlib.sha256).hexdigest()[:40]
    return address, network


def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to; the text itself when it is no address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def normalise(kind: IdentityKind | str, address: str) -> tuple[IdentityKind, str]:
    """The canonical form of an email address or a mainland mobile number, or ValidationFailed."""
    try:
        kind = IdentityKind(kind)
    except ValueError:
        raise ValidationFailed(f"kind must be 'email' or 'phone', not {kind!r}",
                               message_zh="请选择邮箱或手机号验证") from None
    text = (address or "").strip()
    if kind is IdentityKind.EMAIL:
        text = text.lower()
        if not EMAIL_RE.match(text) or len(text) > 254:
            raise ValidationFailed(f"{address!r} is not an email address", message_zh="请填写正确的邮箱地址")
        return kind, text
    digits = re.sub(r"[\s-]", "", text)
    digits = digits.removeprefix("+86").removeprefix("0086")
    if not PHONE_RE.match(digits):
        raise ValidationFailed(f"{address!r} is not a mainland mobile number (11 digits, starting with 1)",
                               message_zh="请填写正确的11位手机号码")
    return kind, digits


def _signer(settings: Settings | None = None) -> TimestampSigner:
    return _signer_for(pepper(settings))


@functools.lru_cache(maxsize=8)
def _signer_for(key: bytes) -> TimestampSigner:
    return TimestampSigner(key, salt="jingong-voter")


def issue_token(campaign_id: int, voter_id: int, settings: Settings | None = None) -> str:
    return _signer(settings).sign(f"{campaign_id}.{voter_id}").decode("ascii")


def voter_of_token(token: str | None, campaign_id: int, settings: Settings | None = None) -> int:
    """The voter id a signed token carries, or ValidationFailed telling the voter to verify again."""
    settings = settings or get_settings()
    if not token:
        raise NotVerified("verify an email address or phone number first", message_zh="请先验证邮箱或手机号")
    try:
        value = _signer(settings).unsign(token, max_age=settings.voter_session_seconds).decode("ascii")
    except SignatureExpired:
        raise NotVerified("the voter session expired; verify again", message_zh="验证已过期，请重新验证") from None
    except BadSignature:
        raise NotVerified("the voter token is not valid; verify again", message_zh="验证信息无效，请重新验证") from None
    cid, _, vid = value.partition(".")
    if int(cid) != campaign_id:
        raise NotVerified("the voter token belongs to another campaign", message_zh="验证信息无效，请重新验证")
    return int(vid)


class NotVerified(NotAuthenticated):
    """No valid voter token: the page asks the voter to verify."""


# --- limits ------------------------------------------------------------------------------------


@dataclass
class Limiters:
    address: RateLimiter
    voter: RateLimiter
    codes: RateLimiter


_limiters: dict[tuple[int, int], Limiters] = {}


def limiters(settings: Settings | None = None) -> Limiters:
    settings = settings or get_settings()
    key = (settings.vote_rate_per_address_minute, settings.vote_rate_per_voter_minute)
    found = _limiters.get(key)
    if found is None:
        found = _limiters[key] = Limiters(
            address=RateLimiter(settings.vote_rate_per_address_minute, what="requests from this address",
                                what_zh="来自此网络地址的请求"),
            voter=RateLimiter(settings.vote_rate_per_voter_minute, what="votes from this voter", what_zh="投票"),
            codes=RateLimiter(max(1, settings.vote_rate_per_address_minute // 4) if key[0] else 0,
                              what="code requests from this address", what_zh="获取验证码"),
        )
    return found


def reset_limits() -> None:
    for found in _limiters.values():
        for limiter in (found.address, found.voter, found.codes):
            limiter.reset()


# --- the window and the candidates, cached briefly ----------------------------------------------


@dataclass(frozen=True)
class Window:
    opens: datetime
    closes: datetime
    zone: ZoneInfo
    per_candidate_per_day: int
    candidates_per_day: int
    show_counts: bool
    loaded: float


_windows: dict[tuple[Any, int], Window] = {}
_candidates: dict[tuple[Any, int], tuple[frozenset[int], float]] = {}
_cache_lock = threading.Lock()


def _cache_key(bind: Any, campaign_id: int) -> tuple[Any, int]:
    """Per database (one process may serve several in tests) and campaign. A database is known by
    its engine's connection pool, which the engine's read-only variants share; hashing the URL
    instead renders it to text, four times per vote."""
    return bind.engine.pool, campaign_id


def clear_caches() -> None:
    with _cache_lock:
        _windows.clear()
        _candidates.clear()


def _cached_window(bind: Any, campaign_id: int) -> Window | None:
    found = _windows.get(_cache_key(bind, campaign_id))
    return found if found is not None and time.monotonic() - found.loaded < CACHE_SECONDS else None


def _cached_candidates(bind: Any, campaign_id: int) -> frozenset[int] | None:
    found = _candidates.get(_cache_key(bind, campaign_id))
    return found[0] if found is not None and time.monotonic() - found[1] < CACHE_SECONDS else None


def window(session: Session, campaign_id: int, *, fresh: bool = False) -> Window:
    key = _cache_key(session.get_bind(), campaign_id)
    found = None if fresh else _cached_window(session.get_bind(), campaign_id)
    if found is not None:
        return found
    campaign = campaigns.get_campaign_by_id(session, campaign_id)
    stage = campaigns.get_stage(session, campaign_id, StageName.VOTING)
    rules = campaigns.spec_of(campaign).voting
    found = Window(stage.opens_at, stage.closes_at, ZoneInfo(campaign.timezone), rules.votes_per_candidate_per_day,
                   rules.candidates_per_voter_per_day, rules.show_counts_publicly, time.monotonic())
    with _cache_lock:
        _windows[key] = found
    return found


def check_open(session: Session, campaign_id: int, now: datetime) -> Window:
    """The voting window, or the refusal saying when it opens or when it closed (by the clock)."""
    win = window(session, campaign_id)
    if not (win.opens <= now < win.closes):
        win = window(session, campaign_id, fresh=True)  # a refusal is never based on a stale copy
    if now < win.opens:
        local = win.opens.astimezone(win.zone)
        raise GuardFailed(f"voting opens at {local:%Y-%m-%d %H:%M} (Beijing time)",
                          message_zh=f"投票尚未开始，开始时间为北京时间{local:%Y年%-m月%-d日 %H:%M}")
    if now >= win.closes:
        local = win.closes.astimezone(win.zone)
        raise DeadlinePassed(f"voting closed at {local:%Y-%m-%d %H:%M:%S} (Beijing time)", deadline=win.closes,
                             message_zh=f"投票已于北京时间{local:%Y年%-m月%-d日 %H:%M}截止")
    return win


def candidates(session: Session, campaign_id: int, *, fresh: bool = False) -> frozenset[int]:
    key = _cache_key(session.get_bind(), campaign_id)
    cached = None if fresh else _cached_candidates(session.get_bind(), campaign_id)
    if cached is not None:
        return cached
    rows = session.exec(select(Nomination.id).where(  # type: ignore[call-overload]
        Nomination.campaign_id == campaign_id, Nomination.state == State.SHORTLISTED)).all()
    ids = frozenset(int(i) for i in rows if i is not None)
    with _cache_lock:
        _candidates[key] = (ids, time.monotonic())
    return ids


def check_candidate(session: Session, campaign_id: int, nomination_id: int) -> None:
    if nomination_id in candidates(session, campaign_id):
        return
    if nomination_id in candidates(session, campaign_id, fresh=True):
        return
    nomination = session.get(Nomination, nomination_id)
    if nomination is None or nomination.campaign_id != campaign_id:
        raise NotFound(f"no candidate {nomination_id}", message_zh="未找到该候选人")
    raise GuardFailed(f"nomination {nomination_id} is not on the voting list ({nomination.state})",
                      message_zh="该候选人不在本次投票名单中")


# --- verification ------------------------------------------------------------------------------


def _minute(instant: datetime) -> int:
    return int(instant.timestamp() // 60)


def _identity(session: Session, campaign_id: int, identity_hash: str) -> VoterIdentity | None:
    return session.exec(select(VoterIdentity).where(VoterIdentity.campaign_id == campaign_id,
                                                    VoterIdentity.identity_hash == identity_hash)).first()


def _check_lock(identity: VoterIdentity, now: datetime) -> None:
    if identity.locked_until is not None and identity.locked_until > now:
        wait = int((identity.locked_until - now).total_seconds()) + 1
        raise RateLimited(f"too many wrong codes: this address is locked for {wait} s", retry_after=wait,
                          message_zh=f"验证码错误次数过多，请{wait}秒后再试")


@dataclass(frozen=True)
class CodeSent:
    kind: IdentityKind
    masked: str
    expires_at: datetime


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
    ip_hash, net_hash = _address_hashes(ip, pepper(settings))
    limiters(settings).codes.hit(ip_hash)
    identity_hash = keyed_hash(f"{kind}:{address}", settings)
    now = clock.now()
    code = f"{secrets.randbelow(10**6):06d}"
    with unit_of_work(engine) as session:
        check_open(session, campaign_id, now)
        identity = _identity(session, campaign_id, identity_hash)
        if identity is None:
            identity = VoterIdentity(campaign_id=campaign_id, kind=kind, identity_hash=identity_hash, created_at=now,
                                     created_minute=_minute(now), created_net_hash=net_hash)
            session.add(identity)
            session.flush()
        _check_lock(identity, now)
        last = session.exec(select(VoteCode).where(VoteCode.identity_id == identity.id)
                            .order_by(col(VoteCode.id).desc())).first()
        if last is not None and settings.vote_code_interval_seconds:
            wait = int(settings.vote_code_interval_seconds - (now - last.created_at).total_seconds()) + 1
            if wait > 1:
                raise RateLimited(f"a code was sent moments ago; ask again in {wait} s", retry_after=wait,
                                  message_zh=f"验证码已发送，请{wait}秒后再重新获取")
        expires = now + timedelta(seconds=settings.vote_code_ttl_seconds)
        record = VoteCode(identity_id=identity.id or 0, code_hash=keyed_hash(f"code:{identity.id}:{code}", settings),
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
    limiters(settings).codes.hit(_address_hashes(ip, pepper(settings))[0])
    identity_hash = keyed_hash(f"{kind}:{address}", settings)
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
                                                       keyed_hash(f"code:{identity.id}:{supplied}", settings)):
            current.used_at = now
            identity.failures = 0
            identity.locked_until = None
            identity.verified_at = identity.verified_at or now
            session.add_all([current, identity])
            return issue_token(campaign_id, identity.id or 0, settings)
        identity.failures += 1
        if identity.failures >= LOCK_AFTER:
            lock = LOCK_BASE_SECONDS * 2 ** (identity.failures - LOCK_AFTER)
            identity.locked_until = now + timedelta(seconds=lock)
            failure = RateLimited(f"wrong code {identity.failures} times: locked for {lock} s", retry_after=lock,
                                  message_zh=f"验证码错误次数过多，请{lock}秒后再试")
        elif current is None:
            failure = ValidationFailed("no valid code: it expired or was used; ask for a new one",
                                       message_zh="验证码已失效，请重新获取")
        else:
            failure = ValidationFailed(f"wrong code ({LOCK_AFTER - identity.failures} tries left)",
                                       message_zh=f"验证码错误，还可尝试{LOCK_AFTER - identity.failures}次")
        session.add(identity)
    raise failure


# --- casting a vote ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    vote_id: int
    nomination_id: int
    day: str
    candidates_left_today: int
    votes: int | None  # the candidate's live count, when the campaign shows counts


@functools.cache
def _statements(dialect: str, per_day_cap: int) -> tuple[Any, Any, Any]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    vote_table = Vote.__table__  # type: ignore[attr-defined]
    day_table = VoterDay.__table__  # type: ignore[attr-defined]
    counter_table = VoteCounter.__table__  # type: ignore[attr-defined]
    add_vote = (insert(vote_table).on_conflict_do_nothing(index_elements=["nomination_id", "voter_id", "day", "slot"])
                .returning(vote_table.c.id))
    day_insert = insert(day_table)
    count_day = day_insert.on_conflict_do_update(
        index_elements=["voter_id", "day"], set_={"candidates": day_table.c.candidates + 1},
        where=day_table.c.candidates < per_day_cap,
    ).returning(day_table.c.candidates)
    counter_insert = insert(counter_table)
    count_vote = counter_insert.on_conflict_do_update(
        index_elements=["nomination_id"], set_={"votes": counter_table.c.votes + 1},
    ).returning(counter_table.c.votes)
    return add_vote, count_day, count_vote


#: PostgreSQL, one vote per candidate per day: the whole vote as one statement (one round trip).
#: ``prior`` refuses a repeat; ``d`` takes one of the day's candidate places (the ON CONFLICT ...
#: WHERE re-checks the cap on the latest row, so racing votes cannot pass it); ``w`` writes the row
#: only if a place was taken; ``k`` counts it only if the row was written. Written once with named
#: parameters (psycopg); the vote lane runs the same text numbered for asyncpg.
PG_VOTE = """
WITH prior AS (
    SELECT 1 FROM vote WHERE nomination_id = %(n)s AND voter_id = %(v)s AND day = %(day)s AND slot = 1
), d AS (
    INSERT INTO voter_day (voter_id, day, candidates)
    SELECT %(v)s, %(day)s, 1 WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (voter_id, day) DO UPDATE SET candidates = voter_day.candidates + 1
    WHERE voter_day.candidates < %(cap)s
    RETURNING candidates
), w AS (
    INSERT INTO vote (campaign_id, nomination_id, voter_id, day, slot, cast_at, minute, ip_hash, net_hash, valid)
    SELECT %(c)s, %(n)s, %(v)s, %(day)s, 1, %(cast_at)s, %(minute)s, %(ip)s, %(net)s, true
    WHERE EXISTS (SELECT 1 FROM d)
    ON CONFLICT (nomination_id, voter_id, day, slot) DO NOTHING
    RETURNING id
), k AS (
    INSERT INTO vote_counter (nomination_id, campaign_id, votes)
    SELECT %(n)s, %(c)s, 1 WHERE EXISTS (SELECT 1 FROM w)
    ON CONFLICT (nomination_id) DO UPDATE SET votes = vote_counter.votes + 1
    RETURNING votes
)
SELECT EXISTS (SELECT 1 FROM prior), (SELECT candidates FROM d), (SELECT id FROM w), (SELECT votes FROM k)
"""
#: a racing duplicate took a day's place but wrote no row: give the place back
PG_RETURN_PLACE = "UPDATE voter_day SET candidates = candidates - 1 WHERE voter_id = %(v)s AND day = %(day)s"


def numbered(sql: str, names: Sequence[str]) -> str:
    """``sql`` with each ``%(name)s`` replaced by ``$i``, i the name's place in ``names`` (asyncpg)."""
    return re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", sql)


@dataclass(frozen=True)
class Ballot:
    """A vote admitted by the clock, the limits and the candidate list, ready to be written."""

    window: Window
    campaign_id: int
    nomination_id: int
    voter_id: int
    day: str
    cast_at: datetime
    ip_hash: str
    net_hash: str

    #: the order of ``params()``, for drivers with numbered placeholders
    NAMES = ("n", "v", "c", "day", "cap", "cast_at", "minute", "ip", "net")

    def params(self) -> dict[str, Any]:
        return {"n": self.nomination_id, "v": self.voter_id, "c": self.campaign_id, "day": self.day,
                "cap": self.window.candidates_per_day, "cast_at": self.cast_at, "minute": _minute(self.cast_at),
                "ip": self.ip_hash, "net": self.net_hash}

    def outcome(self, prior: bool, used: int | None, vote_id: int | None, votes: int | None) -> Receipt | None:
        """The receipt of the one-statement vote's answer, or the refusal it means. None: a racing
        duplicate took a place and wrote no row; the caller gives the place back and refuses."""
        win = self.window
        if prior:
            raise _already(win, self.day)
        if used is None:
            raise _cap_reached(win)
        if vote_id is None:
            return None
        return Receipt(int(vote_id), self.nomination_id, self.day, win.candidates_per_day - int(used),
                       int(votes) if win.show_counts and votes is not None else None)

    def already(self) -> Conflict:
        return _already(self.window, self.day)


def admit(engine: Engine, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
          settings: Settings | None = None) -> Ballot:
    """Check a vote against the limits, the clock and the candidate list (from the short-lived
    caches; a refusal always re-reads the database). Raises the refusal; writes nothing."""
    settings = settings or get_settings()
    ip_hash, net_hash = _address_hashes(ip, pepper(settings))
    found = limiters(settings)
    found.address.hit(ip_hash)
    found.voter.hit(str(voter_id))
    now = clock.now()
    win = _checked_window(engine, campaign_id, now)
    _checked_candidate(engine, campaign_id, nomination_id)
    return Ballot(win, campaign_id, nomination_id, voter_id, now.astimezone(win.zone).date().isoformat(), now,
                  ip_hash, net_hash)


def admission_is_cached(engine: Engine, campaign_id: int, nomination_id: int) -> bool:
    """True when ``admit`` can answer from the caches alone (it will not touch the database)."""
    win = _cached_window(engine, campaign_id)
    listed = _cached_candidates(engine, campaign_id)
    return win is not None and listed is not None and nomination_id in listed and win.opens <= clock.now() < win.closes


def one_statement(ballot: Ballot, engine: Engine) -> bool:
    """Whether the ballot is written by the one-statement PostgreSQL vote."""
    return engine.dialect.name == "postgresql" and ballot.window.per_candidate_per_day == 1


def _checked_window(engine: Engine, campaign_id: int, now: datetime) -> Window:
    """The open window, from the cache when it is fresh; a refusal always re-reads the database."""
    found = _cached_window(engine, campaign_id)
    if found is not None and found.opens <= now < found.closes:
        return found
    with unit_of_work(engine, readonly=True) as session:
        return check_open(session, campaign_id, now)


def _checked_candidate(engine: Engine, campaign_id: int, nomination_id: int) -> None:
    listed = _cached_candidates(engine, campaign_id)
    if listed is not None and nomination_id in listed:
        return
    with unit_of_work(engine, readonly=True) as session:
        check_candidate(session, campaign_id, nomination_id)


def cast_vote(engine: Engine, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
              settings: Settings | None = None) -> Receipt:
    """One vote: checked against the clock, the limits and the day's rules, written as a row with
    the live counter in one transaction. (On PostgreSQL the web service casts through the vote
    lane, ``voting.lane``, which writes the same statement from the event loop.)"""
    return write(engine, admit(engine, campaign_id, nomination_id, voter_id, ip, settings))


def write(engine: Engine, ballot: Ballot) -> Receipt:
    """Write an admitted ballot: the row, the day's place and the counter, or the refusal."""
    if one_statement(ballot, engine):
        return _cast_pg(engine, ballot)
    win, day = ballot.window, ballot.day
    campaign_id, nomination_id, voter_id = ballot.campaign_id, ballot.nomination_id, ballot.voter_id
    row = {"campaign_id": campaign_id, "nomination_id": nomination_id, "voter_id": voter_id, "day": day,
           "cast_at": ballot.cast_at, "minute": _minute(ballot.cast_at), "ip_hash": ballot.ip_hash,
           "net_hash": ballot.net_hash}
    with unit_of_work(engine) as session:
        add_vote, count_day, count_vote = _statements(session.get_bind().dialect.name, win.candidates_per_day)
        slot = 1
        if win.per_candidate_per_day > 1:
            slot = 1 + session.execute(select(func.count()).select_from(Vote).where(
                Vote.nomination_id == nomination_id, Vote.voter_id == voter_id, Vote.day == day)).scalar_one()
        if slot > win.per_candidate_per_day:
            raise ballot.already()
        vote_id = session.execute(add_vote, {**row, "slot": slot, "valid": True}).scalar()
        if vote_id is None:
            raise ballot.already()
        if slot == 1:  # a new candidate for the day takes one of the voter's places
            used = session.execute(count_day, {"voter_id": voter_id, "day": day, "candidates": 1}).scalar()
            if used is None:
                raise _cap_reached(win)
        else:
            used = session.execute(select(VoterDay.candidates).where(
                VoterDay.voter_id == voter_id, VoterDay.day == day)).scalar_one()
        votes = session.execute(count_vote, {"nomination_id": nomination_id, "campaign_id": campaign_id,
                                             "votes": 1}).scalar()
    return Receipt(vote_id, nomination_id, day, win.candidates_per_day - (used or 0),
                   votes if win.show_counts else None)


def _cast_pg(engine: Engine, ballot: Ballot) -> Receipt:
    params = ballot.params()
    with engine.connect() as conn:
        prior, used, vote_id, votes = conn.exec_driver_sql(PG_VOTE, params).one()
        receipt = ballot.outcome(prior, used, vote_id, votes)
        if receipt is None:
            conn.exec_driver_sql(PG_RETURN_PLACE, params)
        conn.commit()
    if receipt is None:
        raise ballot.already()
    return receipt


def _cap_reached(win: Window) -> GuardFailed:
    return GuardFailed(f"at most {win.candidates_per_day} candidates per voter per day",
                       message_zh=f"每位投票人每天最多为{win.candidates_per_day}名候选人投票，请明天再来")


def _already(win: Window, day: str) -> Conflict:
    times = "一票" if win.per_candidate_per_day == 1 else f"{win.per_candidate_per_day}票"
    return Conflict(f"already voted for this candidate on {day} (Beijing time); vote again tomorrow",
                    message_zh=f"您今天（{day}）已为该候选人投过{times}，请明天（北京时间0点后）再来")


# --- the tally ---------------------------------------------------------------------------------


def recount(session: Session, campaign_id: int) -> dict[int, int]:
    """The tally from the rows themselves: valid votes per candidate."""
    rows = session.execute(select(Vote.nomination_id, func.count()).where(
        Vote.campaign_id == campaign_id, col(Vote.valid).is_(True)).group_by(col(Vote.nomination_id))).all()
    return {int(n): int(c) for n, c in rows}


def counters(session: Session, campaign_id: int) -> dict[int, int]:
    rows = session.exec(select(VoteCounter).where(VoteCounter.campaign_id == campaign_id)).all()
    return {r.nomination_id: r.votes for r in rows}


def frozen(session: Session, campaign_id: int) -> dict[int, int] | None:
    rows = session.exec(select(FrozenTally).where(FrozenTally.campaign_id == campaign_id)).all()
    return {r.nomination_id: r.votes for r in rows} if rows else None


def tally(session: Session, campaign_id: int) -> dict[int, int]:
    """The frozen tally once voting closed, the live counters before."""
    fixed = frozen(session, campaign_id)
    return fixed if fixed is not None else counters(session, campaign_id)


def tally_of(session: Session, campaign: Campaign, nomination: Nomination) -> int | None:
    """What the review board shows beside a candidate (None: never on the voting list)."""
    if nomination.id is None:
        return None
    return tally(session, campaign.id or 0).get(nomination.id, 0)


@dataclass(frozen=True)
class Mismatch:
    nomination_id: int
    counter: int
    rows: int


def compare(live: dict[int, int], truth: dict[int, int]) -> list[Mismatch]:
    """Every candidate whose live counter differs from the count of its valid vote rows."""
    return [Mismatch(n, live.get(n, 0), truth.get(n, 0)) for n in sorted(set(live) | set(truth))
            if live.get(n, 0) != truth.get(n, 0)]


def verify(session: Session, campaign_id: int) -> list[Mismatch]:
    return compare(counters(session, campaign_id), recount(session, campaign_id))


@dataclass(frozen=True)
class Standing:
    nomination_id: int
    name: str | None
    employer: str | None
    votes: int


@dataclass(frozen=True)
class Standings:
    frozen: bool
    rows: list[Standing]  # most votes first

    def names(self) -> dict[int, str | None]:
        return {r.nomination_id: r.name for r in self.rows}


def standings(session: Session, campaign_id: int) -> Standings:
    """The tally with each candidate's name and employer, most votes first (what the committee
    sees: frozen after the close, live before)."""
    fixed = frozen(session, campaign_id)
    counts = fixed if fixed is not None else counters(session, campaign_id)
    people = {n.id: n for n in session.exec(select(Nomination).where(col(Nomination.id).in_(list(counts))))}
    rows = [Standing(n, people[n].name if n in people else None, people[n].employer if n in people else None, v)
            for n, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Standings(fixed is not None, rows)


def invalidate(session: Session, vote_id: int, *, actor: Actor, reason: str) -> Vote:
    """Mark a vote invalid (the row stays) and take it off the live counter, with the reason audited."""
    if not (reason or "").strip():
        raise ValidationFailed("a reason is required to invalidate a vote", message_zh="请填写作废理由")
    vote = session.get(Vote, vote_id)
    if vote is None:
        raise NotFound(f"no vote {vote_id}", message_zh="未找到该投票记录")
    if not vote.valid:
        raise Conflict(f"vote {vote_id} is already invalid ({vote.invalid_reason})", message_zh="该票已作废")
    if frozen(session, vote.campaign_id) is not None:
        raise GuardFailed("the tally is frozen: voting has closed", message_zh="投票已截止，计票结果已冻结，不能再作废")
    vote.valid = False
    vote.invalidated_at = clock.now()
    vote.invalidated_by = str(actor)
    vote.invalid_reason = reason.strip()
    session.add(vote)
    session.execute(update(VoteCounter).where(col(VoteCounter.nomination_id) == vote.nomination_id)
                    .values(votes=VoteCounter.votes - 1))
    audit.record(session, actor=actor, action="vote_invalidated", subject=f"vote:{vote_id}", reason=reason,
                 campaign_id=vote.campaign_id, data={"nomination_id": vote.nomination_id, "day": vote.day})
    return vote


def list_votes(session: Session, campaign_id: int, *, nomination_id: int | None = None,
               limit: int = 200) -> list[Vote]:
    query = select(Vote).where(Vote.campaign_id == campaign_id)
    if nomination_id is not None:
        query = query.where(Vote.nomination_id == nomination_id)
    return list(session.exec(query.order_by(col(Vote.id).desc()).limit(limit)))


# --- flags -------------------------------------------------------------------------------------


def scan_flags(session: Session, campaign_id: int) -> int:
    """Record every minute in which one address, one network, or the crowd of new voters went
    over the campaign's thresholds. Idempotent; returns how many new flags were written."""
    campaign = campaigns.get_campaign_by_id(session, campaign_id)
    rules = campaigns.spec_of(campaign).voting
    found: list[tuple[FlagKind, str, int, int, int]] = []
    for kind, column, threshold in ((FlagKind.IP_BURST, Vote.ip_hash, rules.flag_votes_per_address_minute),
                                    (FlagKind.NETWORK_BURST, Vote.net_hash, rules.flag_votes_per_network_minute)):
        rows = session.execute(select(column, Vote.minute, func.count()).where(Vote.campaign_id == campaign_id)
                               .group_by(col(column), col(Vote.minute)).having(func.count() > threshold)).all()
        found += [(kind, key, minute, count, threshold) for key, minute, count in rows]
    threshold = rules.flag_new_voters_per_minute
    rows = session.execute(select(VoterIdentity.created_minute, func.count())
                           .where(VoterIdentity.campaign_id == campaign_id)
                           .group_by(col(VoterIdentity.created_minute)).having(func.count() > threshold)).all()
    found += [(FlagKind.FRESH_IDENTITIES, "*", minute, count, threshold) for minute, count in rows]
    existing = {(f.kind, f.key, f.minute) for f in session.exec(select(VoteFlag).where(
        VoteFlag.campaign_id == campaign_id))}
    now = clock.now()
    new = 0
    for kind, key, minute, count, limit in found:
        if (kind, key, minute) in existing:
            continue
        session.add(VoteFlag(campaign_id=campaign_id, kind=kind, key=key, minute=minute, count=count,
                             threshold=limit, created_at=now))
        new += 1
    if new:
        session.flush()
        audit.record(session, actor=Actor.system("vote-monitor"), action="votes_flagged", subject="voting",
                     campaign_id=campaign_id, data={"new_flags": new})
    return new


def list_flags(session: Session, campaign_id: int) -> list[VoteFlag]:
    return list(session.exec(select(VoteFlag).where(VoteFlag.campaign_id == campaign_id)
                             .order_by(col(VoteFlag.minute).desc())))


def minute_local(minute: int, zone: str) -> datetime:
    return datetime.fromtimestamp(minute * 60, ZoneInfo(zone))


# --- the freeze at the close -------------------------------------------------------------------


def freeze(session: Session, campaign: Campaign, stage: Stage) -> None:
    """Inside the voting close step: fix the tally from the rows (every candidate, zero included),
    flag what the last minutes brought, and audit it. A second close changes nothing."""
    cid = campaign.id or 0
    clear_caches()
    if frozen(session, cid) is not None:
        return
    truth = recount(session, cid)
    mismatches = compare(counters(session, cid), truth)
    now = clock.now()
    listed = candidates(session, cid, fresh=True) | set(truth)
    for nomination_id in sorted(listed):
        session.add(FrozenTally(campaign_id=cid, nomination_id=nomination_id, votes=truth.get(nomination_id, 0),
                                frozen_at=now))
    scan_flags(session, cid)
    audit.record(session, actor=Actor.system(), action="votes_frozen", subject=stage.name, campaign_id=cid,
                 data={"tally": {str(n): truth.get(n, 0) for n in sorted(listed)},
                       "total": sum(truth.values()), "counter_mismatches": len(mismatches)})


def install() -> None:
    jobs.on_stage_close(StageName.VOTING)(freeze)
    jobs.on_stage_open(StageName.VOTING)(lambda session, campaign, stage: clear_caches())
    campaigns.on_calendar_changed(clear_caches)
