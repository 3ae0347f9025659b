"""The committee's lists of nominations: search (name, employer, unit, grade, number), filters
(state, unit, kind, grade, over quota), sort by a column, and pages with the total count. One
query for the page and one for the count, whatever the size of the campaign.

超名额 (over quota): a unit's nominations count in submission order (submitted_at, then number);
drafts and withdrawn ones do not count. The first ``quota`` are within the quota, only those after
them are flagged — so withdrawing one moves the next one back within the quota."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_
from sqlmodel import Session, col, select

from campaigns.models import NominatingUnit
from config.campaign import CampaignSpec
from nominations import service as nominations
from nominations.models import Attachment, Nomination, NominationKind, PriorAward
from nominations.states import State

#: states that do not use a unit's quota
UNCOUNTED = (State.DRAFT.value, State.WITHDRAWN.value)
MAX_PER_PAGE = 200
SORTS = ("priority", "id", "name", "unit", "employer", "position", "grade", "kind", "submitted", "state",
         "over_quota")


@dataclass(frozen=True)
class ListQuery:
    """What the committee asks a list for; every field is optional."""

    text: str = ""
    states: tuple[State, ...] = ()
    unit_id: int | None = None
    kind: NominationKind | None = None
    grade: str | None = None
    over_quota: bool | None = None
    #: a column of ``SORTS``; "priority": most priority conditions first, then by submission
    sort: str = "priority"
    descending: bool = False
    page: int = 1
    #: None: every matching row (the JSON API without paging parameters)
    per_page: int | None = 50


@dataclass(frozen=True)
class ListRow:
    nomination: Nomination
    unit_name: str | None
    unit_quota: int | None
    #: the position among the unit's counted nominations (1 = first submitted), None if not counted
    unit_rank: int | None

    @property
    def over_quota(self) -> bool:
        return self.unit_rank is not None and self.unit_quota is not None and self.unit_rank > self.unit_quota


@dataclass(frozen=True)
class ListPage:
    rows: list[ListRow]
    total: int
    page: int
    per_page: int | None
    query: ListQuery = field(default_factory=ListQuery)

    @property
    def pages(self) -> int:
        if not self.per_page:
            return 1
        return max(1, math.ceil(self.total / self.per_page))


def _ranks(campaign_id: int) -> Any:
    """Each counted unit nomination with its place in its unit's submission order."""
    order = (func.coalesce(col(Nomination.submitted_at), col(Nomination.created_at)), col(Nomination.id))
    return (
        select(col(Nomination.id).label("nid"),
               func.row_number().over(partition_by=col(Nomination.unit_id), order_by=order).label("rank"))
        .where(Nomination.campaign_id == campaign_id, col(Nomination.unit_id).is_not(None),
               col(Nomination.state).not_in(UNCOUNTED))
        .subquery("unit_rank")
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _search(text: str) -> ColumnElement[bool]:
    """Every word must match: a number the id or 编号, other words part of the name, employer, grade or unit."""
    words = text.split()
    clauses = []
    for word in words:
        number = word.removeprefix("#")
        if number.isdigit() and len(number) < 10:  # a number: the nomination's id or the candidate's 编号
            clauses.append(or_(col(Nomination.id) == int(number), col(Nomination.ballot_number) == int(number)))
            continue
        pattern = _like(word)
        clauses.append(or_(*[
            func.lower(col(column)).like(pattern, escape="\\")
            for column in (Nomination.name, Nomination.employer, Nomination.technical_grade, NominatingUnit.name)
        ]))
    return and_(*clauses)


def _filtered(campaign_id: int, q: ListQuery, ranks: Any, columns: Sequence[Any]) -> Select[Any]:
    query = (
        select(*columns)
        .select_from(Nomination)
        .outerjoin(NominatingUnit, col(NominatingUnit.id) == col(Nomination.unit_id))
        .outerjoin(ranks, ranks.c.nid == col(Nomination.id))
        .where(Nomination.campaign_id == campaign_id)
    )
    if q.states:
        query = query.where(col(Nomination.state).in_([s.value for s in q.states]))
    if q.unit_id is not None:
        query = query.where(Nomination.unit_id == q.unit_id)
    if q.kind is not None:
        query = query.where(Nomination.kind == q.kind.value)
    if q.grade:
        query = query.where(Nomination.technical_grade == q.grade)
    if q.text.strip():
        query = query.where(_search(q.text.strip()))
    if q.over_quota is not None:
        over = and_(ranks.c.rank.is_not(None), ranks.c.rank > col(NominatingUnit.quota))
        query = query.where(over if q.over_quota else ~func.coalesce(over, false()))
    return query


def _order(q: ListQuery, ranks: Any) -> list[Any]:
    over = func.coalesce(ranks.c.rank > col(NominatingUnit.quota), false())
    submitted = func.coalesce(col(Nomination.submitted_at), col(Nomination.created_at))
    keys: dict[str, Any] = {
        "id": col(Nomination.id), "name": col(Nomination.name), "unit": col(NominatingUnit.name),
        "employer": col(Nomination.employer), "position": col(Nomination.position),
        "grade": col(Nomination.technical_grade), "kind": col(Nomination.kind), "state": col(Nomination.state),
        "over_quota": over, "submitted": submitted,
        # more conditions first: the count is negated so that ascending is the natural order
        "priority": -func.coalesce(func.json_array_length(col(Nomination.priority_conditions)), 0),
    }
    key = keys.get(q.sort, keys["priority"])
    primary = key.desc() if q.descending else key.asc()
    tie = [submitted.desc(), col(Nomination.id).desc()] if q.descending else [submitted.asc(), col(Nomination.id).asc()]
    # rows without a value (no unit, no grade) go last either way; then submission order
    return [key.is_(None), primary, *tie]


def search(session: Session, campaign_id: int, q: ListQuery) -> ListPage:
    """One page of the campaign's nominations as ``q`` asks, with the total that match."""
    page = max(1, q.page)
    per_page = None if q.per_page is None else max(1, min(q.per_page, MAX_PER_PAGE))
    ranks = _ranks(campaign_id)
    total = session.exec(_filtered(campaign_id, q, ranks, [func.count()])).one()  # type: ignore[call-overload]
    query = _filtered(campaign_id, q, ranks, [Nomination, NominatingUnit.name, NominatingUnit.quota, ranks.c.rank])
    query = query.order_by(*_order(q, ranks))
    if per_page is not None:
        page = min(page, max(1, math.ceil(total / per_page)))
        query = query.limit(per_page).offset((page - 1) * per_page)
    rows = [ListRow(n, unit_name, quota, rank)
            for n, unit_name, quota, rank in session.exec(query).all()]  # type: ignore[call-overload]
    return ListPage(rows=rows, total=int(total), page=page, per_page=per_page, query=q)


def over_quota_ids(session: Session, campaign_id: int, unit_id: int | None = None) -> set[int]:
    """The nominations beyond their unit's quota, in submission order (see the module's note)."""
    ranks = _ranks(campaign_id)
    query = (
        select(ranks.c.nid)
        .join(Nomination, col(Nomination.id) == ranks.c.nid)
        .join(NominatingUnit, col(NominatingUnit.id) == col(Nomination.unit_id))
        .where(ranks.c.rank > col(NominatingUnit.quota))
    )
    if unit_id is not None:
        query = query.where(Nomination.unit_id == unit_id)
    return {int(i) for i in session.exec(query).all()}


def prior_awards_by_nomination(session: Session, rows: Sequence[Nomination],
                               spec: CampaignSpec) -> dict[int, list[PriorAward]]:
    """The registry rows of every nomination on a page, in one query."""
    names = {n.name.strip() for n in rows if n.name}
    if not names:
        return {}
    found = list(session.exec(select(PriorAward).where(col(PriorAward.name).in_(names),
                                                       nominations.prior_editions_clause(spec))))
    return {n.id or 0: [p for p in found if n.name and p.name == n.name.strip() and nominations.same_person(p, n)]
            for n in rows}


def attachment_counts(session: Session, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    query = (select(Attachment.nomination_id, func.count()).where(col(Attachment.nomination_id).in_(ids))
             .group_by(col(Attachment.nomination_id)))
    return {int(i): int(c) for i, c in session.exec(query).all()}


def grades_in_use(session: Session, campaign_id: int) -> list[str]:
    query = (select(Nomination.technical_grade).where(Nomination.campaign_id == campaign_id,
                                                      col(Nomination.technical_grade).is_not(None))
             .distinct().order_by(col(Nomination.technical_grade)))
    return [g for g in session.exec(query).all() if g]
