"""The committee's decisions on the dashboard: a refused hand close, 立即重试, the review's shortfall."""

from __future__ import annotations

from typing import Any

from accounts.models import Role
from campaigns import service as campaigns
from config.campaign import StageName
from nominations.states import State
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import OFFICE as OFFICE_ACTOR
from tests.factories import create_nomination
from tests.stages.test_decisions import _review_with


def test_a_refused_close_answers_why_and_moves_nothing(as_member: Any, engine: Any, campaign: Any, spec: Any,
                                                      clock: Any, uow: Any) -> None:
    from stages import jobs

    with uow() as session:
        create_nomination(session, campaign, spec, State.SUBMITTED)
    clock.set(beijing(2021, 6, 10, 9, 0))
    jobs.tick(engine)
    admin, token = as_member("office", Role.OFFICE_ADMIN)
    refused = admin.post("/committee/calendar/screening/close", data={"csrf_token": token, "reason": "提前结束"})
    assert refused.status_code in (409, 422) and "尚有1件申报未完成初审" in refused.text
    with unit_of_work(engine, readonly=True) as session:
        stage = campaigns.get_stage(session, campaign.id, StageName.SCREENING)
        assert stage.closes_at == beijing(2021, 7, 1, 0, 0) and stage.closed_at is None


def test_the_dashboard_shows_what_needs_doing_and_the_admin_decides_the_shortfall(
        as_member: Any, engine: Any, campaign: Any, spec: Any, clock: Any, uow: Any) -> None:
    _review_with(uow, campaign, spec, clock, engine, main=10, finalist=9, disqualified=1)
    admin, token = as_member("office", Role.OFFICE_ADMIN)
    page = admin.get("/committee")
    assert "需要处理" in page.text and "综合评审截止" in page.text
    assert "处理后立即重试" in page.text and "津工精匠10/10，入围奖9/10" in page.text
    reviewer, reviewer_token = as_member("reviewer", Role.REVIEWER)
    forbidden = reviewer.post("/committee/review/shortfall", data={"csrf_token": reviewer_token, "reason": "x"})
    assert forbidden.status_code == 403
    retried = admin.post("/committee/calendar/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "仍未能执行" in retried.text and "正式候选人人数与评选名额不符" in retried.text
    no_reason = admin.post("/committee/review/shortfall", data={"csrf_token": token, "reason": ""})
    assert no_reason.status_code == 422 and "请填写决定理由" in no_reason.text
    decided = admin.post("/committee/review/shortfall", data={"csrf_token": token, "reason": "一名候选人政审未通过"},
                         follow_redirects=True)
    assert decided.status_code == 200 and "已按现有人数结束综合评审" in decided.text
    assert "需要处理" not in decided.text
    with unit_of_work(engine, readonly=True) as session:
        assert campaigns.get_stage(session, campaign.id, StageName.REVIEW).closed_at is not None


def test_the_admin_brings_the_next_back_from_the_dashboard(
        as_member: Any, engine: Any, campaign: Any, spec: Any, clock: Any, uow: Any) -> None:
    from workflow import service as workflow
    from workflow.machine import Event

    [left_out] = _review_with(uow, campaign, spec, clock, engine, main=10, finalist=9, disqualified=1, waiting=1,
                               votes=(41,))
    with uow() as session:
        workflow.transition(session, left_out, Event.NOT_SELECT, actor=OFFICE_ACTOR)
    admin, token = as_member("office", Role.OFFICE_ADMIN)
    page = admin.get("/committee")
    assert "递补下一位" in page.text and "41票" in page.text
    reviewer, reviewer_token = as_member("reviewer", Role.REVIEWER)
    assert reviewer.post("/committee/review/bring-next", data={"csrf_token": reviewer_token, "reason": "x"}
                         ).status_code == 403
    no_reason = admin.post("/committee/review/bring-next", data={"csrf_token": token, "reason": ""},
                           follow_redirects=True)
    assert "未能递补：请填写递补理由" in no_reason.text
    brought = admin.post("/committee/review/bring-next", data={"csrf_token": token, "reason": "按得票递补"},
                         follow_redirects=True)
    assert brought.status_code == 200 and "（41票）递补纳入综合评审" in brought.text
    with unit_of_work(engine, readonly=True) as session:
        from nominations.models import Nomination
        assert session.get(Nomination, left_out).state == State.VOTED
