"""The campaign's rules that guard transitions (``Rules``, one method per ``Guard``) and the
stage-level rules checked when a stage closes (the shortlist's size, the review's counts)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName, Track
from core import clock
from core.clock import ensure_utc
from core.errors import DeadlinePassed, GuardFailed
from nominations import service as nominations
from nominations.models import Nomination, PriorAwardKind
from nominations.states import State
from workflow import queries, shortfall
from workflow.machine import Event, Guard


def return_due(data: dict[str, Any]) -> datetime:
    """The due instant of a send-back (data ``due_at``: an ISO date-time with its offset)."""
    raw = data.get("due_at")
    try:
        due = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except ValueError:
        due = None
    if due is None or due.tzinfo is None:
        raise GuardFailed(f"a send-back needs a due instant with its offset (due_at), got {raw!r}",
                          message_zh="请填写补正截止时间（北京时间）")
    return ensure_utc(due)


class Rules:
    """The guards of one event on one nomination, evaluated against the database and the clock.
    Each method is named by its ``Guard`` and raises ``GuardFailed`` saying why it refuses."""

    def __init__(self, session: Session, nomination: Nomination, event: Event, data: dict[str, Any], *,
                 ahead: int = 0) -> None:
        self.session = session
        self.nomination = nomination
        self.event = event
        self.data = data
        #: rows of the same batch planned before this one: not yet written, but they count
        self.ahead = ahead

    @functools.cached_property
    def campaign(self) -> Campaign:
        return campaigns.get_campaign_by_id(self.session, self.nomination.campaign_id)

    @functools.cached_property
    def spec(self) -> CampaignSpec:
        return campaigns.spec_of(self.campaign)

    def check(self, guard: Guard) -> bool:
        judge: Callable[[], bool] = getattr(self, guard.value)
        return judge()

    def form_complete(self) -> bool:
        problems = nominations.form_problems(self.nomination, self.spec)
        if problems:
            fields = ", ".join(p.field for p in problems)
            raise GuardFailed(
                f"the form is not complete: {'; '.join(p.message for p in problems)}",
                message_zh="表格未填写完整：" + "；".join(p.message_zh for p in problems),
            ) from ValueError(fields)
        return True

    def nomination_open(self) -> bool:
        stage = campaigns.get_stage(self.session, self.campaign.id or 0, StageName.NOMINATION)
        now = clock.received()
        deadline = campaigns.submission_deadline(stage, self.spec, self.nomination.extension_until)
        local = self.spec.to_local(deadline).strftime("%Y-%m-%d %H:%M:%S")
        if now < stage.opens_at:
            opens = self.spec.to_local(stage.opens_at).strftime("%Y-%m-%d %H:%M")
            raise GuardFailed(
                f"nominations open at {opens} ({self.spec.timezone})",
                message_zh=f"推荐申报尚未开始，开始时间为北京时间{opens}",
            )
        if now >= deadline:
            raise DeadlinePassed(
                f"the nomination deadline passed at {local} ({self.spec.timezone}); "
                "submissions are no longer accepted",
                deadline=deadline,
                message_zh=f"推荐申报已于北京时间{local}截止，不再接受提交",
            )
        return True

    def return_due(self) -> bool:
        due = return_due(self.data)
        if due <= clock.now():
            raise GuardFailed("the due instant of a send-back must be in the future",
                              message_zh="补正截止时间须晚于当前时间")
        return True

    def resubmit_open(self) -> bool:
        due = self.nomination.extension_until
        if due is not None and clock.received() >= ensure_utc(due):
            local = self.spec.to_local(due).strftime("%Y-%m-%d %H:%M:%S")
            raise DeadlinePassed(f"the changes were due at {local} ({self.spec.timezone})", deadline=due,
                                 message_zh=f"补正已于北京时间{local}截止，不能再提交")
        return True

    def review_open(self) -> bool:
        stage = campaigns.get_stage(self.session, self.campaign.id or 0, StageName.REVIEW)
        if stage.opened_at is None or stage.closed_at is not None:
            raise GuardFailed("a candidate comes back into the review only while the review is open",
                              message_zh="综合评审未在进行中，不能递补")
        return True

    def photo_uploaded(self) -> bool:
        """Checked after the deadline's rule: a late submission is told it is late first."""
        problems = nominations.photo_problems(self.nomination)
        if problems:
            raise GuardFailed(problems[0].message, message_zh=problems[0].message_zh) from ValueError("photo")
        return True

    def not_prior_winner(self) -> bool:
        for row in nominations.prior_awards_of(self.session, self.nomination, self.spec):
            if row.award == PriorAwardKind.WINNER:
                raise GuardFailed(
                    f"{self.nomination.name} won the award in edition {row.edition} and may not be "
                    "nominated again",
                    message_zh=f"{self.nomination.name}已获评第{row.edition}届“津工精匠”，不再申报",
                )
        return True

    def shortlist_room(self) -> bool:
        count = queries.count_in_state(self.session, self.campaign.id or 0, State.SHORTLISTED) + self.ahead
        if count >= self.spec.shortlist.max:
            raise GuardFailed(
                f"the shortlist already holds {count}, the most allowed is {self.spec.shortlist.max}",
                message_zh=f"初步候选人已达{count}名，最多{self.spec.shortlist.max}名",
            )
        return True

    def track(self) -> bool:
        raw = self.data.get("track")
        try:
            track = Track(str(raw))
        except ValueError:
            raise GuardFailed(
                f"vet needs a track: {Track.MAIN.value} or {Track.FINALIST.value} (got {raw!r})",
                message_zh="请选择“津工精匠”或“津工精匠入围奖”",
            ) from None
        if track is Track.FINALIST:
            for row in nominations.prior_awards_of(self.session, self.nomination, self.spec):
                if row.award == PriorAwardKind.FINALIST:
                    raise GuardFailed(
                        f"{self.nomination.name} was a finalist in edition {row.edition} and may "
                        "only be placed in the main track",
                        message_zh=f"{self.nomination.name}曾获第{row.edition}届“津工精匠入围奖”，"
                        "不得再列入入围奖",
                    )
        limit = self.spec.awards.for_track(track)
        placed = self.session.exec(
            select(func.count()).select_from(Nomination).where(
                Nomination.campaign_id == self.campaign.id,
                col(Nomination.state).in_([State.VETTED.value, State.ON_HOLD.value, State.PUBLICIZED.value]),
                Nomination.track == track.value,
            )
        ).one()
        placed += self.ahead
        if placed >= limit:
            raise GuardFailed(
                f"the {track.value} track already holds {placed} of {limit}",
                message_zh=f"该奖项正式候选人已满{limit}名",
            )
        return True


def check_shortlist(session: Session, campaign_id: int) -> int:
    """The shortlist must hold min..max candidates when screening closes."""
    spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id))
    count = queries.count_in_state(session, campaign_id, State.SHORTLISTED)
    if not spec.shortlist.min <= count <= spec.shortlist.max:
        raise GuardFailed(
            f"the shortlist holds {count}; it must hold {spec.shortlist.min}–{spec.shortlist.max} "
            "before screening can close",
            message_zh=f"初步候选人为{count}名，须为{spec.shortlist.min}至{spec.shortlist.max}名",
        )
    return count


def check_review(session: Session, campaign_id: int) -> dict[Track, int]:
    """The review must name exactly the configured number per track, or fewer where the office
    admin decided on the shortfall (``workflow.shortfall``)."""
    spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id))
    counts = shortfall.named(session, campaign_id)
    wrong = [t for t in Track if counts[t] != spec.awards.for_track(t)]
    if wrong and not (all(counts[t] <= spec.awards.for_track(t) for t in Track)
                      and shortfall.decided_for(session, campaign_id, counts)):
        detail = ", ".join(f"{t.value} {counts[t]} of {spec.awards.for_track(t)}" for t in Track)
        raise GuardFailed(
            f"the review must name exactly the configured counts per track: {detail}",
            message_zh="正式候选人人数与评选名额不符："
            + "，".join(f"{'津工精匠' if t is Track.MAIN else '入围奖'}{counts[t]}/{spec.awards.for_track(t)}"
                       for t in Track),
        )
    return counts
