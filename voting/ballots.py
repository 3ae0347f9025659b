"""Admitting a vote: the checks against the limits, the clock and the candidate list that turn a
request into a Ballot ready to write, the Receipt a written vote answers with, and the refusals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from config.secrets import pepper
from config.settings import Settings, get_settings
from core import clock
from core.errors import Conflict, GuardFailed
from storage.db import unit_of_work
from voting import receipts
from voting.identities import address_hashes
from voting.limits import limiters
from voting.monitor import minute_of
from voting.windows import Window, cached_candidates, cached_window, check_candidate, check_open


@dataclass(frozen=True)
class Receipt:
    vote_id: int
    nomination_id: int
    day: str
    candidates_left_today: int
    votes: int | None  # the candidate's live count, when the campaign shows counts
    receipt_code: str = ""  # the voter's receipt (voting.receipts): only its hash is stored


def cap_reached(win: Window) -> GuardFailed:
    return GuardFailed(f"at most {win.candidates_per_day} candidates per voter per day",
                       message_zh=f"每位投票人每天最多为{win.candidates_per_day}名候选人投票，请明天再来")


def _already(win: Window, day: str) -> Conflict:
    times = "一票" if win.per_candidate_per_day == 1 else f"{win.per_candidate_per_day}票"
    return Conflict(f"already voted for this candidate on {day} (Beijing time); vote again tomorrow",
                    message_zh=f"您今天（{day}）已为该候选人投过{times}，请明天（北京时间0点后）再来")


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
    receipt_code: str = ""

    #: the order of ``params()``, for drivers with numbered placeholders
    NAMES = ("n", "v", "c", "day", "cap", "cast_at", "minute", "ip", "net", "receipt")

    def params(self) -> dict[str, Any]:
        return {"n": self.nomination_id, "v": self.voter_id, "c": self.campaign_id, "day": self.day,
                "cap": self.window.candidates_per_day, "cast_at": self.cast_at, "minute": minute_of(self.cast_at),
                "ip": self.ip_hash, "net": self.net_hash, "receipt": self.receipt_hash}

    @property
    def receipt_hash(self) -> str | None:
        return receipts.public_hash(self.receipt_code) if self.receipt_code else None

    def outcome(self, prior: bool, used: int | None, vote_id: int | None, votes: int | None) -> Receipt | None:
        """The receipt of the one-statement vote's answer, or the refusal it means. None: a racing
        duplicate took a place and wrote no row; the caller gives the place back and refuses."""
        win = self.window
        if prior:
            raise _already(win, self.day)
        if used is None:
            raise cap_reached(win)
        if vote_id is None:
            return None
        return Receipt(int(vote_id), self.nomination_id, self.day, win.candidates_per_day - int(used),
                       int(votes) if win.show_counts and votes is not None else None, self.receipt_code)

    def already(self) -> Conflict:
        return _already(self.window, self.day)


def admit(engine: Engine, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
          settings: Settings | None = None) -> Ballot:
    """Check a vote against the limits, the clock and the candidate list (from the short-lived
    caches; a refusal always re-reads the database). Raises the refusal; writes nothing."""
    settings = settings or get_settings()
    ip_hash, net_hash = address_hashes(ip, pepper(settings))
    found = limiters(settings)
    found.address.hit(ip_hash)
    found.voter.hit(str(voter_id))
    return _admitted(engine, campaign_id, nomination_id, voter_id, ip_hash, net_hash)


async def admit_async(engine: Engine, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
                      settings: Settings | None = None) -> Ballot:
    """``admit`` on the event loop: the shared limits (Redis) are asked without blocking the loop.
    Only where ``admission_is_cached`` (else the window and candidate checks read the database)."""
    settings = settings or get_settings()
    ip_hash, net_hash = address_hashes(ip, pepper(settings))
    found = limiters(settings)
    await found.address.hit_async(ip_hash)
    await found.voter.hit_async(str(voter_id))
    return _admitted(engine, campaign_id, nomination_id, voter_id, ip_hash, net_hash)


def _admitted(engine: Engine, campaign_id: int, nomination_id: int, voter_id: int, ip_hash: str,
              net_hash: str) -> Ballot:
    now = clock.received()
    win = _checked_window(engine, campaign_id, now)
    _checked_candidate(engine, campaign_id, nomination_id)
    return Ballot(win, campaign_id, nomination_id, voter_id, now.astimezone(win.zone).date().isoformat(), now,
                  ip_hash, net_hash, receipts.new_code())


def admission_is_cached(engine: Engine, campaign_id: int, nomination_id: int) -> bool:
    """True when ``admit`` can answer from the caches alone (it will not touch the database)."""
    win = cached_window(engine, campaign_id)
    listed = cached_candidates(engine, campaign_id)
    return (win is not None and listed is not None and nomination_id in listed
            and win.opens <= clock.received() < win.closes)


def _checked_window(engine: Engine, campaign_id: int, now: datetime) -> Window:
    """The open window, from the cache when it is fresh; a refusal always re-reads the database."""
    found = cached_window(engine, campaign_id)
    if found is not None and found.opens <= now < found.closes:
        return found
    with unit_of_work(engine, readonly=True) as session:
        return check_open(session, campaign_id, now)


def _checked_candidate(engine: Engine, campaign_id: int, nomination_id: int) -> None:
    listed = cached_candidates(engine, campaign_id)
    if listed is not None and nomination_id in listed:
        return
    with unit_of_work(engine, readonly=True) as session:
        check_candidate(session, campaign_id, nomination_id)
