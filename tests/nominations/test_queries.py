"""The committee's lists: search, filters, sort, pages, and 超名额 in submission order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from campaigns import service as campaigns
from campaigns.models import Campaign
from core import clock as core_clock
from nominations import queries
from nominations import service as nominations
from nominations.models import Nomination, NominationKind
from nominations.queries import ListQuery
from nominations.states import State


def _insert(session: Session, campaign: Campaign, count: int, *, unit_id: int | None = None,
            start: int = 0, **fields: Any) -> list[Nomination]:
    """Submitted nominations written directly (the list reads rows; no transitions needed)."""
    now = core_clock.now()
    rows = []
    for i in range(start, start + count):
        values: dict[str, Any] = {
            "kind": NominationKind.UNIT if unit_id else NominationKind.SELF, "unit_id": unit_id,
            "name": f"候选人{i:04d}", "employer": f"重庆第{i % 7}机械厂", "technical_grade": "高级技师",
            "state": State.SUBMITTED, "campaign_id": campaign.id, "created_at": now, "updated_at": now,
            "submitted_at": now + timedelta(minutes=i),
        } | fields
        rows.append(Nomination(**values))
    session.add_all(rows)
    session.flush()
    return rows


@contextmanager
def _statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _units(session: Session, campaign: Campaign) -> list[Any]:
    return campaigns.list_units(session, campaign.id or 0)


def test_only_nominations_beyond_the_quota_in_submission_order_are_over(uow: Any, campaign: Campaign,
                                                                     clock: Any) -> None:
    with uow() as session:
        unit = _units(session, campaign)[0]  # 区人力社保局, quota 3
        assert unit.quota == 3
        now = core_clock.now()
        # numbers and submission order differ: the last-numbered was submitted first
        rows = _insert(session, campaign, 5, unit_id=unit.id)
        for n, minutes in zip(rows, [50, 40, 30, 20, 10], strict=True):
            n.submitted_at = now + timedelta(minutes=minutes)
        session.flush()
        over = queries.over_quota_ids(session, campaign.id or 0)
        assert over == {rows[0].id, rows[1].id}
        assert [nominations.is_over_quota(session, n) for n in rows] == [True, True, False, False, False]
        # a withdrawn one gives its place back: the next in order comes within the quota
        rows[4].state = State.WITHDRAWN
        session.flush()
        assert queries.over_quota_ids(session, campaign.id or 0) == {rows[0].id}
        page = queries.search(session, campaign.id or 0, ListQuery(over_quota=True))
        assert [r.nomination.id for r in page.rows] == [rows[0].id]
        page = queries.search(session, campaign.id or 0, ListQuery(over_quota=False, states=(State.SUBMITTED,)))
        assert {r.nomination.id for r in page.rows} == {rows[1].id, rows[2].id, rows[3].id}
        assert all(not r.over_quota for r in page.rows)


def test_search_matches_name_employer_unit_grade_and_number(uow: Any, campaign: Campaign, clock: Any) -> None:
    with uow() as session:
        units = _units(session, campaign)
        a = _insert(session, campaign, 1, unit_id=units[1].id, name="张精匠", employer="长安汽车", start=1)[0]
        b = _insert(session, campaign, 1, name="李工", employer="綦江齿轮", technical_grade="技师", start=2)[0]
        _insert(session, campaign, 3, start=10)
        cid = campaign.id or 0

        def ids(text: str) -> set[int | None]:
            return {r.nomination.id for r in queries.search(session, cid, ListQuery(text=text)).rows}

        assert ids("精匠") == {a.id}
        assert ids("长安") == {a.id}
        assert ids(units[1].name) == {a.id}
        assert ids("技师 李") == {b.id}  # every word must match
        assert ids(str(b.id)) == {b.id}
        a.ballot_number = 9001  # the candidate's 编号 once voting opened
        session.add(a)
        session.flush()
        assert ids("9001") == {a.id} and ids("#9001 张") == {a.id}
        assert ids("100%_") == set()  # LIKE wildcards are literal
        assert len(ids("")) == 5


def test_filters_sort_and_pages(uow: Any, campaign: Campaign, clock: Any) -> None:
    with uow() as session:
        units = _units(session, campaign)
        cid = campaign.id or 0
        _insert(session, campaign, 30, start=0)
        unit_rows = _insert(session, campaign, 4, unit_id=units[2].id, start=100, technical_grade="技师")
        unit_rows[0].state = State.SCREENED
        session.flush()
        page = queries.search(session, cid, ListQuery(per_page=10, page=2, sort="name"))
        assert (page.total, page.pages, page.page) == (34, 4, 2)
        assert [r.nomination.name for r in page.rows] == [f"候选人{i:04d}" for i in range(10, 20)]
        last = queries.search(session, cid, ListQuery(per_page=10, page=99, sort="name", descending=True))
        assert last.page == 4 and [r.nomination.name for r in last.rows] == ["候选人0003", "候选人0002",
                                                                           "候选人0001", "候选人0000"]
        by_unit = queries.search(session, cid, ListQuery(unit_id=units[2].id, states=(State.SUBMITTED,)))
        assert by_unit.total == 3 and all(r.unit_name == units[2].name for r in by_unit.rows)
        assert queries.search(session, cid, ListQuery(kind=NominationKind.UNIT)).total == 4
        assert queries.search(session, cid, ListQuery(grade="技师")).total == 4
        assert queries.search(session, cid, ListQuery(states=(State.SCREENED,))).total == 1
        # units without a value sort last both ways; within the unit the number breaks ties
        by_unit_sort = queries.search(session, cid, ListQuery(sort="unit", descending=True, per_page=None))
        assert by_unit_sort.rows[0].unit_name == units[2].name and by_unit_sort.rows[-1].unit_name is None
        newest = queries.search(session, cid, ListQuery(sort="submitted", descending=True, per_page=1))
        assert newest.rows[0].nomination.id == unit_rows[-1].id


def test_a_page_of_two_thousand_is_two_statements(uow: Any, campaign: Campaign, clock: Any) -> None:
    with uow() as session:
        units = _units(session, campaign)
        cid = campaign.id or 0
        for k, unit in enumerate(units[:10]):
            _insert(session, campaign, 150, unit_id=unit.id, start=k * 150)
        _insert(session, campaign, 500, start=1500)
        session.expunge_all()
        with _statements(session) as seen:
            page = queries.search(session, cid, ListQuery(text="候选人", sort="unit", over_quota=True, page=3))
            flags = [r.over_quota for r in page.rows]
        assert page.total == sum(150 - u.quota for u in units[:10])
        assert len(page.rows) == 50 and all(flags)
        assert len(seen) == 2, seen  # the count and the page, no query per row
