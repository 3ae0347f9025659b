"""Reviewers' scores on the review board: hidden before one's own submission, mean and spread
after, audited, refused to members who do not score; the screening queue's pages and per-row
bulk refusals over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from accounts.models import Role
from audit.models import AuditEvent
from campaigns import service as campaigns
from config.campaign import StageName
from core.clock import ManualClock, use_clock
from nominations.models import Nomination, NominationKind, ReviewScore
from nominations.states import State
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination

SHEET_A = {"skill": 28, "innovation": 24, "mentoring": 16, "conduct": 18}  # total 86
SHEET_B = {"skill": 20, "innovation": 20, "mentoring": 12, "conduct": 16}  # total 68


#: scores are given while the review stage is open (21 July to 1 August 2021)
IN_REVIEW = beijing(2021, 7, 22, 9, 0)


@pytest.fixture(autouse=True)
def review_open(clock: ManualClock) -> ManualClock:
    clock.set(IN_REVIEW)
    return clock


def make(engine: Any, campaign: Any, spec: Any, state: State, **overrides: Any) -> Nomination:
    """A nomination made in its own time (submitted while nominations were open), back in the review."""
    with use_clock(ManualClock(beijing(2021, 5, 10, 9, 0))), unit_of_work(engine) as session:
        return create_nomination(session, campaign, spec, state, **overrides)


def form(token: str, sheet: dict[str, int], **comments: str) -> dict[str, str]:
    return {"csrf_token": token} | {f"points_{k}": str(v) for k, v in sheet.items()} | {
        f"comment_{k}": v for k, v in comments.items()}


def test_scores_hidden_before_own_submission_then_mean_and_spread(as_member: Any, engine: Any, campaign: Any,
                                                                   spec: Any) -> None:
    n = make(engine, campaign, spec, State.VOTED, name="王精工")
    first, first_token = as_member("rev1", Role.REVIEWER)
    second, second_token = as_member("rev2", Role.REVIEWER)
    sent = first.post(f"/committee/review/{n.id}/scores", data=form(first_token, SHEET_A, skill="操作精湛"))
    assert sent.status_code == 303
    # the second reviewer sees neither the first's points nor the mean before submitting
    before = second.get(f"/committee/review/{n.id}").text
    assert "提交您自己的评分后" in before and "86" not in before and "操作精湛" not in before
    board = second.get("/committee/review").text
    assert "待您评分" in board and "86.0" not in board
    assert second.post(f"/committee/review/{n.id}/scores", data=form(second_token, SHEET_B)).status_code == 303
    after = second.get(f"/committee/review/{n.id}").text
    assert "77.0" in after and "操作精湛" in after  # the mean of 86 and 68; the first's remark, unnamed
    assert "rev1" not in after
    assert "9.0" in after and "68–86" in after  # population sd and range of the totals
    assert "24.0" in after and "20–28" in after  # skill: mean, range
    assert "77.0" in second.get("/committee/review").text
    # members who do not score see the summary at once, and cannot score
    office, office_token = as_member("office", Role.OFFICE_ADMIN)
    assert "77.0" in office.get(f"/committee/review/{n.id}").text
    refused = office.post(f"/committee/review/{n.id}/scores", data=form(office_token, SHEET_A))
    assert refused.status_code == 403 and "只有评审专家可以评分" in refused.text
    vetting, vetting_token = as_member("vet", Role.VETTING_OFFICER)
    assert vetting.post(f"/committee/review/{n.id}/scores", data=form(vetting_token, SHEET_A)).status_code == 403
    with unit_of_work(engine, readonly=True) as session:
        rows = session.exec(select(ReviewScore).where(ReviewScore.nomination_id == n.id)).all()
        assert len(rows) == 8
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "review_scored")
                              .order_by(col(AuditEvent.id))).all()
        assert [e.actor for e in events] == ["user:rev1", "user:rev2"]
        assert events[0].subject == f"nomination:{n.id}" and events[0].data["total"] == 86
        assert events[0].data["points"] == SHEET_A


def test_a_revised_sheet_is_audited_with_the_previous_points(as_member: Any, engine: Any, campaign: Any,
                                                             spec: Any) -> None:
    n = make(engine, campaign, spec, State.VOTED)
    reviewer, token = as_member("rev1", Role.REVIEWER)
    reviewer.post(f"/committee/review/{n.id}/scores", data=form(token, SHEET_A))
    reviewer.post(f"/committee/review/{n.id}/scores", data=form(token, SHEET_B))
    with unit_of_work(engine, readonly=True) as session:
        assert sorted(s.points for s in session.exec(select(ReviewScore))) == sorted(SHEET_B.values())
        revised = session.exec(select(AuditEvent).where(AuditEvent.action == "review_scores_revised")).one()
        assert revised.data["previous"] == SHEET_A and revised.data["points"] == SHEET_B


def test_a_bad_sheet_is_refused_whole_and_keeps_what_was_typed(as_member: Any, engine: Any, campaign: Any,
                                                               spec: Any) -> None:
    n = make(engine, campaign, spec, State.VOTED)
    reviewer, token = as_member("rev1", Role.REVIEWER)
    over = reviewer.post(f"/committee/review/{n.id}/scores", data=form(token, SHEET_A | {"mentoring": 21},
                                                                       skill="很好"))
    assert over.status_code == 422 and "0至20的整数" in over.text
    assert 'value="28"' in over.text and 'value="很好"' in over.text
    missing = reviewer.post(f"/committee/review/{n.id}/scores",
                            data={k: v for k, v in form(token, SHEET_A).items() if k != "points_conduct"})
    assert missing.status_code == 422 and "请为“职业道德与先进事迹”评分" in missing.text
    early = make(engine, campaign, spec, State.SUBMITTED)
    assert reviewer.post(f"/committee/review/{early.id}/scores", data=form(token, SHEET_A)).status_code == 409
    with unit_of_work(engine, readonly=True) as session:
        assert session.exec(select(ReviewScore)).all() == []


def test_a_reviewer_of_the_nominating_unit_does_not_score(as_member: Any, engine: Any, campaign: Any,
                                                          spec: Any) -> None:
    with unit_of_work(engine, readonly=True) as session:
        unit = campaigns.list_units(session, campaign.id)[0]
    n = make(engine, campaign, spec, State.VOTED, kind=NominationKind.UNIT, unit_id=unit.id)
    reviewer, token = as_member("rev1", Role.REVIEWER, unit_id=unit.id)
    assert "请回避" in reviewer.get(f"/committee/review/{n.id}").text
    assert reviewer.post(f"/committee/review/{n.id}/scores", data=form(token, SHEET_A)).status_code == 403


def test_board_sorts_by_mean_and_keeps_withdraw_apart(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    low = make(engine, campaign, spec, State.VOTED, name="低分者")
    high = make(engine, campaign, spec, State.VOTED, name="高分者")
    reviewer, token = as_member("rev1", Role.REVIEWER)
    reviewer.post(f"/committee/review/{low.id}/scores", data=form(token, SHEET_B))
    reviewer.post(f"/committee/review/{high.id}/scores", data=form(token, SHEET_A))
    office, _ = as_member("office", Role.OFFICE_ADMIN)
    html = office.get("/committee/review").text
    assert html.index("高分者") < html.index("低分者")
    assert 'class="danger-zone"' in html and "data-confirm" in html and "撤回申报" in html


def test_screening_pages_search_and_bulk_refusals_in_place(as_member: Any, engine: Any, campaign: Any,
                                                          spec: Any) -> None:
    ids = [make(engine, campaign, spec, State.SUBMITTED, name=f"申报人{i:02d}").id for i in range(3)]
    already = make(engine, campaign, spec, State.SHORTLISTED, name="已入选").id
    reviewer, token = as_member("rev1", Role.REVIEWER)
    html = reviewer.get("/committee/screening", params={"q": "申报人01"}).text
    assert "申报人01" in html and "申报人02" not in html and "共 1 项" in html
    paged = reviewer.get("/committee/screening", params={"per_page": "2", "page": "2", "sort": "-name"}).text
    assert "第 2 / 2 页" in paged and "申报人00" in paged and "申报人02" not in paged
    answer = reviewer.post("/committee/bulk", headers={"accept": "application/json"},
                           data={"ids": [str(i) for i in [*ids, already]], "event": "pass_screening",
                                 "csrf_token": token}).json()
    assert answer["changed"] == 3 and answer["refused"] == 1
    refused = next(r for r in answer["rows"] if r["id"] == already)
    assert refused["state"] == "shortlisted" and refused["refused_zh"]
    listed = reviewer.get("/api/committee/nominations", params={"state": "screened", "per_page": 2, "sort": "-id"})
    assert listed.headers["x-total-count"] == "3" and [r["id"] for r in listed.json()] == [ids[2], ids[1]]


def test_scores_only_while_the_review_is_open(as_member: Any, engine: Any, campaign: Any, spec: Any,
                                               review_open: ManualClock) -> None:
    n = make(engine, campaign, spec, State.VOTED)
    reviewer, token = as_member("rev1", Role.REVIEWER)
    review_open.set(beijing(2021, 7, 20, 23, 59))  # the day before the review opens
    sheet = reviewer.get(f"/committee/review/{n.id}").text
    assert "综合评审尚未开始" in sheet and 'action="/committee/review/' not in sheet  # no form to fill in vain
    early = reviewer.post(f"/committee/review/{n.id}/scores", data=form(token, SHEET_A))
    assert early.status_code == 422
    assert "综合评审尚未开始，评分时间为2021年7月21日 00:00至2021年7月31日 24:00" in early.text
    review_open.set(IN_REVIEW)
    assert reviewer.post(f"/committee/review/{n.id}/scores", data=form(token, SHEET_A)).status_code == 303
    review_open.set(beijing(2021, 8, 1, 0, 0))  # the calendar's close instant
    latecomer, late_token = as_member("rev2", Role.REVIEWER)
    late = latecomer.post(f"/committee/review/{n.id}/scores", data=form(late_token, SHEET_B))
    assert late.status_code == 422 and "综合评审已结束，评分不能再提交或修改" in late.text
    review_open.set(IN_REVIEW)
    with unit_of_work(engine) as session:  # closed early by hand: closed
        campaigns.get_stage(session, campaign.id, StageName.REVIEW).closed_at = IN_REVIEW
    assert reviewer.post(f"/committee/review/{n.id}/scores", data=form(token, SHEET_B)).status_code == 422
    with unit_of_work(engine, readonly=True) as session:
        rows = session.exec(select(ReviewScore).where(ReviewScore.nomination_id == n.id)).all()
    assert {r.criterion: r.points for r in rows} == SHEET_A  # the refused revisions changed nothing


def test_the_board_names_the_public_number_beside_the_nomination(as_member: Any, engine: Any, campaign: Any,
                                                                  spec: Any) -> None:
    n = make(engine, campaign, spec, State.VOTED, name="有号者")
    with unit_of_work(engine) as session:
        row = session.get(Nomination, n.id)
        assert row is not None
        row.ballot_number = 17  # given when voting opened
        session.add(row)
    office, _ = as_member("office", Role.OFFICE_ADMIN)
    board = office.get("/committee/review").text
    assert "投票17号" in board  # what voters and the press call them
