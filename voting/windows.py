"""The voting window and the candidate list, cached for a moment per database and campaign, with the
checks a vote passes against them (a refusal always re-reads the database)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from campaigns import service as campaigns
from campaigns.models import Campaign, Stage
from config.campaign import StageName
from core.errors import DeadlinePassed, GuardFailed, NotFound
from nominations.models import Nomination
from nominations.states import State

#: how long a cached voting window or candidate list is trusted (refusals always re-read)
CACHE_SECONDS = 2.0


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


def clear_caches_at_open(session: Session, campaign: Campaign, stage: Stage) -> None:
    """Stage-open listener: the voting that opens is never judged by a copy taken before it."""
    clear_caches()


def cached_window(bind: Any, campaign_id: int) -> Window | None:
    found = _windows.get(_cache_key(bind, campaign_id))
    return found if found is not None and time.monotonic() - found.loaded < CACHE_SECONDS else None


def cached_candidates(bind: Any, campaign_id: int) -> frozenset[int] | None:
    found = _candidates.get(_cache_key(bind, campaign_id))
    return found[0] if found is not None and time.monotonic() - found[1] < CACHE_SECONDS else None


def window(session: Session, campaign_id: int, *, fresh: bool = False) -> Window:
    key = _cache_key(session.get_bind(), campaign_id)
    found = None if fresh else cached_window(session.get_bind(), campaign_id)
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
    cached = None if fresh else cached_candidates(session.get_bind(), campaign_id)
    if cached is not None:
        return cached
    rows = session.exec(select(Nomination.id).where(
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
