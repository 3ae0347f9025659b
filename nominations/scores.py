"""Reviewers' scores in the review (综合评审评分): each reviewer gives every candidate points on
every criterion of the campaign file's ``[[review.criteria]]`` and submits the sheet at once
(again to revise it; both audited). A reviewer sees nobody else's scores, nor the mean, before
submitting their own for that candidate; members who do not score (office, vetting) see the
mean and spread. Totals are weighted sums of a reviewer's points; the spread is the population
standard deviation and the range over the reviewers who submitted. Sheets are given and revised
only while the review stage is open (``scoring_window``)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlmodel import Session, col, select

from accounts.models import Role, User
from audit import service as audit
from campaigns import service as campaigns
from config.campaign import CampaignSpec, ReviewCriterion, StageName
from core import clock
from core.actor import Actor, ActorKind
from core.beijing import beijing_text, beijing_until_text
from core.errors import Forbidden, GuardFailed, InvalidTransition, ValidationFailed
from nominations.models import Nomination, ReviewScore
from nominations.states import State

#: who scores: the review's experts
SCORERS = frozenset({Role.REVIEWER})
#: the candidates of the review board
SCORABLE_STATES = (State.VOTED, State.VETTED, State.ON_HOLD)
MAX_COMMENT = 1000


@dataclass(frozen=True)
class Spread:
    count: int
    mean: float
    sd: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        if not values:
            return None
        return cls(len(values), statistics.fmean(values), statistics.pstdev(values), min(values), max(values))


@dataclass(frozen=True)
class Summary:
    """Every reviewer's submitted sheet for one candidate, by criterion and in total."""

    reviewers: int
    by_criterion: dict[str, Spread]
    total: Spread | None


def may_score(user: User) -> bool:
    return Role(user.role) in SCORERS


def _actor(user: User) -> Actor:
    return Actor(ActorKind.USER, user.username, user.id, str(user.role))


def criteria_of(spec: CampaignSpec) -> list[ReviewCriterion]:
    return list(spec.review.criteria)


def scoring_window(session: Session, campaign_id: int) -> str | None:
    """Why no sheet can be given now (in Chinese), or None while the review stage is open: from its
    opening (by the calendar or by hand) until its close (by the calendar or by hand)."""
    stage = campaigns.get_stage(session, campaign_id, StageName.REVIEW)
    now = clock.now()
    window = f"{beijing_text(stage.opens_at)}至{beijing_until_text(stage.closes_at)}"
    if stage.closed_at is not None or now >= stage.closes_at:
        return f"综合评审已结束，评分不能再提交或修改（评分时间为{window}）"
    if stage.opened_at is None and now < stage.opens_at:
        return f"综合评审尚未开始，评分时间为{window}"
    return None


def sheet_of(session: Session, reviewer_id: int, nomination_id: int) -> dict[str, ReviewScore]:
    query = select(ReviewScore).where(ReviewScore.reviewer_id == reviewer_id,
                                      ReviewScore.nomination_id == nomination_id)
    return {s.criterion: s for s in session.exec(query)}


def submitted_by(session: Session, reviewer_id: int, nomination_ids: Iterable[int]) -> set[int]:
    """Which of these candidates the reviewer has scored."""
    ids = list(nomination_ids)
    if not ids:
        return set()
    query = select(ReviewScore.nomination_id).where(ReviewScore.reviewer_id == reviewer_id,
                                                    col(ReviewScore.nomination_id).in_(ids)).distinct()
    return set(session.exec(query).all())


def may_see(session: Session, user: User, nomination_id: int) -> bool:
    """A reviewer sees the others' scores of a candidate only after submitting their own."""
    return not may_score(user) or bool(submitted_by(session, user.id or 0, [nomination_id]))


def submit(session: Session, user: User, nomination: Nomination, spec: CampaignSpec,
           points: Mapping[str, str | int | None],
           comments: Mapping[str, str | None] | None = None) -> list[ReviewScore]:
    """Record the reviewer's whole sheet for ``nomination`` (every criterion), replacing an earlier
    one. Refused as a whole with the first problem; nothing is written then."""
    if not may_score(user):
        raise Forbidden(f"role {user.role} does not score candidates", "只有评审专家可以评分")
    if user.unit_id is not None and user.unit_id == nomination.unit_id:
        raise Forbidden(f"{user.username} belongs to the nominating unit of nomination {nomination.id}",
                        f"您与该申报的推荐单位存在利益关系（同一单位），请回避（申报编号{nomination.id}）")
    if nomination.state not in SCORABLE_STATES:
        raise InvalidTransition(f"nomination {nomination.id} is {nomination.state}; only the review's candidates "
                                "are scored", message_zh="只有综合评审阶段的候选人可以评分")
    closed = scoring_window(session, nomination.campaign_id)
    if closed is not None:
        raise GuardFailed("scores are given only while the review stage is open", message_zh=closed)
    criteria = criteria_of(spec)
    if not criteria:
        raise ValidationFailed("the campaign file has no [[review.criteria]]", message_zh="评选方案未设评分细则")
    values: dict[str, int] = {}
    for c in criteria:
        raw = points.get(c.code)
        text = str(raw).strip() if raw is not None else ""
        if not text:
            raise ValidationFailed(f"{c.code}: points missing", message_zh=f"请为“{c.name}”评分")
        if not text.isdigit() or len(text) > 4 or int(text) > c.max_points:
            raise ValidationFailed(f"{c.code}: points must be a whole number from 0 to {c.max_points}",
                                   message_zh=f"“{c.name}”的分数须为0至{c.max_points}的整数")
        values[c.code] = int(text)
    notes = {c.code: ((comments or {}).get(c.code) or "").strip()[:MAX_COMMENT] or None for c in criteria}
    existing = sheet_of(session, user.id or 0, nomination.id or 0)
    previous = {code: s.points for code, s in existing.items()}
    now = clock.now()
    rows = []
    for c in criteria:
        row = existing.get(c.code) or ReviewScore(campaign_id=nomination.campaign_id, nomination_id=nomination.id or 0,
                                                  reviewer_id=user.id or 0, criterion=c.code, points=0,
                                                  submitted_at=now)
        row.points, row.comment, row.submitted_at = values[c.code], notes[c.code], now
        session.add(row)
        rows.append(row)
    data: dict[str, object] = {"points": values, "total": _total(values, criteria)}
    if previous:
        data["previous"] = previous
    audit.record(session, actor=_actor(user), action="review_scores_revised" if previous else "review_scored",
                 subject=f"nomination:{nomination.id}", campaign_id=nomination.campaign_id, data=data)
    session.flush()
    return rows


def _total(points: Mapping[str, int], criteria: list[ReviewCriterion]) -> float:
    return round(sum(points.get(c.code, 0) * c.weight for c in criteria), 2)


def comments_of(session: Session, nomination_id: int) -> list[tuple[str, str]]:
    """The reviewers' remarks on a candidate as (criterion, text), without their names; shown
    only to those who may see the scores."""
    query = (select(ReviewScore.criterion, ReviewScore.comment)
             .where(ReviewScore.nomination_id == nomination_id, col(ReviewScore.comment).is_not(None))
             .order_by(col(ReviewScore.criterion), col(ReviewScore.id)))
    return [(criterion, comment) for criterion, comment in session.exec(query).all() if comment]


def summaries(session: Session, nomination_ids: Iterable[int], spec: CampaignSpec) -> dict[int, Summary]:
    """Mean and spread per criterion and of the total, for many candidates in one query. Call it
    only for what the asking member may see (``may_see``)."""
    ids = list(nomination_ids)
    if not ids:
        return {}
    criteria = criteria_of(spec)
    sheets: dict[int, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for s in session.exec(select(ReviewScore).where(col(ReviewScore.nomination_id).in_(ids))):
        sheets[s.nomination_id][s.reviewer_id][s.criterion] = s.points
    result = {}
    for nomination_id, by_reviewer in sheets.items():
        per_criterion = {c.code: Spread.of([float(sheet[c.code]) for sheet in by_reviewer.values()
                                            if c.code in sheet]) for c in criteria}
        result[nomination_id] = Summary(
            reviewers=len(by_reviewer),
            by_criterion={code: spread for code, spread in per_criterion.items() if spread is not None},
            total=Spread.of([_total(sheet, criteria) for sheet in by_reviewer.values()]),
        )
    return result
