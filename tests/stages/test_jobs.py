"""The calendar runs itself: due steps, closes, catch-up, blocked closes, committee control."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, func, select

from audit.models import AuditEvent
from campaigns import service as campaigns
from campaigns.models import Stage
from config.campaign import StageName, Track
from core.actor import Actor
from core.errors import DeadlinePassed, ValidationFailed
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import State
from notifications.models import OutboxMail
from stages import jobs
from stages import service as stages
from stages.models import ScheduledStep
from tests.conftest import beijing
from tests.factories import OFFICE, create_draft, create_nomination
from workflow import service as workflow
from workflow.machine import Event

COMMITTEE = Actor.system("test-committee")


def _audit(session, action: str) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))))


def _states(session, campaign_id: int) -> dict[State, int]:
    return workflow_counts(session, campaign_id)


def workflow_counts(session, campaign_id: int) -> dict[State, int]:
    from nominations import service as nominations

    return nominations.count_by_state(session, campaign_id)


def test_steps_follow_the_calendar(uow, campaign, spec):
    with uow() as session:
        steps = {s.key: s for s in session.exec(select(ScheduledStep))}
    assert steps["nomination:close"].due_at == beijing(2021, 5, 31, 18, 0)
    assert steps["nomination:reminder:7"].due_at == beijing(2021, 5, 24, 18, 0)
    assert steps["nomination:reminder:1"].due_at == beijing(2021, 5, 30, 18, 0)
    assert len(steps) == 2 * len(spec.stages) + len(spec.rules.reminder_days)


def test_submission_after_the_instant_is_refused_even_if_the_close_never_ran(uow, campaign, spec, clock, engine):
    with uow() as session:
        early, late = create_draft(session, campaign, spec), create_draft(session, campaign, spec)
    clock.set(beijing(2021, 5, 31, 17, 59, 59, 999000))
    with uow() as session:
        assert workflow.transition(session, early.id, Event.SUBMIT, actor=Actor.applicant())
    clock.set(beijing(2021, 5, 31, 18, 0))
    with uow() as session:
        assert campaigns.get_stage(session, campaign.id, StageName.NOMINATION).closed_at is None  # no job ran
    with pytest.raises(DeadlinePassed) as info, uow() as session:
        workflow.transition(session, late.id, Event.SUBMIT, actor=Actor.applicant())
    assert "2021-05-31 18:00:00 (Asia/Shanghai)" in str(info.value)
    assert info.value.message_zh == "推荐申报已于北京时间2021-05-31 18:00:00截止，不再接受提交"


def test_catch_up_after_downtime_runs_in_calendar_order_and_records_lateness(uow, campaign, spec, clock, engine):
    with uow() as session:
        create_draft(session, campaign, spec)
    clock.set(beijing(2021, 6, 3, 9, 0))  # the service was down from before April to 3 June
    results = jobs.tick(engine)
    keys = [r.key for r in results]
    assert keys == ["publicity:open", "publicity:close", "nomination:open", "nomination:reminder:7",
                    "nomination:reminder:3", "nomination:reminder:1", "nomination:close", "screening:open"]
    assert all(r.done for r in results)
    late = {r.key: r.late_seconds for r in results}
    assert late["nomination:close"] == pytest.approx(timedelta(days=2, hours=15).total_seconds())
    with uow() as session:
        recorded = _audit(session, "step_ran_late")
        assert [e.subject for e in recorded] == keys
        close = next(e for e in recorded if e.subject == "nomination:close")
        assert close.data["late_seconds"] == late["nomination:close"]
        assert close.reason == "比预定时间晚2天15小时0分执行（服务曾停止或繁忙）"
        closed = {e.subject: e.reason for e in _audit(session, "stage_closed")}
        assert closed["nomination"] == "未提交的草稿1件已冻结，已提交0件"  # the audit trail reads in Chinese
        # reminders after the deadline are not sent: the draft was frozen meanwhile
        assert session.exec(select(func.count()).select_from(OutboxMail)).one() == 0
    assert jobs.tick(engine) == []  # running again changes nothing


def test_reminders_reach_drafts_only(uow, campaign, spec, clock, engine):
    with uow() as session:
        draft = create_draft(session, campaign, spec)
        create_nomination(session, campaign, spec, State.SUBMITTED)
    clock.set(beijing(2021, 5, 24, 18, 0))
    assert [r.key for r in jobs.tick(engine)][-1] == "nomination:reminder:7"
    with uow() as session:
        mails = session.exec(select(OutboxMail).where(OutboxMail.template == "deadline_reminder")).all()
    assert [m.nomination_id for m in mails] == [draft.id]
    assert "7" in mails[0].subject or "7" in mails[0].text_body


def _close_screening_at(clock, engine):
    clock.set(beijing(2021, 7, 1, 0, 0))
    return jobs.tick(engine)


def test_screening_close_with_a_short_shortlist_alerts_and_does_not_advance(uow, campaign, spec, clock, engine):
    with uow() as session:
        for _ in range(19):
            create_nomination(session, campaign, spec, State.SHORTLISTED)
        extra = create_nomination(session, campaign, spec, State.SCREENED)
    results = _close_screening_at(clock, engine)
    blocked = results[-1]
    assert blocked.key == "screening:close" and not blocked.done
    assert "holds 19" in blocked.summary
    with uow() as session:
        assert session.get(Nomination, extra.id).state == State.SCREENED  # nothing moved
        assert campaigns.get_stage(session, campaign.id, StageName.SCREENING).closed_at is None
        assert campaigns.get_stage(session, campaign.id, StageName.VOTING).opened_at is None  # order kept
        alerts = _audit(session, "alert")
        assert len(alerts) == 1 and alerts[0].reason == "初步候选人为19名，须为20至25名"  # as the office reads it
        office = session.exec(select(OutboxMail).where(OutboxMail.template == "committee_alert")).all()
        assert [m.recipients for m in office] == [[spec.office.email]]
    assert jobs.tick(engine) == []  # waits for its retry instant, no alert storm
    with uow() as session:
        workflow.transition(session, extra.id, Event.SHORTLIST, actor=OFFICE)
    clock.advance(jobs.RETRY_AFTER)
    results = jobs.tick(engine)
    assert [r.key for r in results] == ["screening:close", "voting:open"] and all(r.done for r in results)
    with uow() as session:
        assert workflow_counts(session, campaign.id)[State.SHORTLISTED] == 20


def test_screening_close_refuses_to_leave_nominations_unscreened(uow, campaign, spec, clock, engine):
    with uow() as session:
        for _ in range(20):
            create_nomination(session, campaign, spec, State.SHORTLISTED)
        create_nomination(session, campaign, spec, State.SUBMITTED)
    results = _close_screening_at(clock, engine)
    assert not results[-1].done and "still submitted and not screened" in results[-1].summary


def test_the_whole_calendar_moves_candidates_once(uow, campaign, spec, clock, engine):
    with uow() as session:
        shortlisted = [create_nomination(session, campaign, spec, State.SHORTLISTED) for _ in range(22)]
        passed_over = create_nomination(session, campaign, spec, State.SCREENED)
    _close_screening_at(clock, engine)
    with uow() as session:
        assert session.get(Nomination, passed_over.id).state == State.NOT_SHORTLISTED
    clock.set(beijing(2021, 7, 11, 0, 0))
    jobs.tick(engine)
    with uow() as session:
        assert workflow_counts(session, campaign.id)[State.VOTED] == 22
        for i, n in enumerate(shortlisted[:20]):
            workflow.transition(session, n.id, Event.VET, actor=OFFICE,
                                data={"track": (Track.MAIN if i < 10 else Track.FINALIST).value})
    clock.set(beijing(2021, 8, 2, 0, 0))
    jobs.tick(engine)
    with uow() as session:
        workflow.transition(session, shortlisted[0].id, Event.OBJECT, actor=Actor.applicant("public"),
                            reason="异议")
    clock.set(beijing(2021, 9, 1, 0, 0))
    results = jobs.tick(engine)
    assert [r.key for r in results] == ["notice:close"]
    with uow() as session:
        counts = workflow_counts(session, campaign.id)
    assert counts[State.PUBLICIZED] == 19 and counts[State.ON_HOLD] == 1 and counts[State.NOT_SELECTED] == 2
    clock.set(beijing(2022, 1, 1, 0, 0))
    jobs.tick(engine)
    with uow() as session:
        counts = workflow_counts(session, campaign.id)
        assert counts[State.COMMENDED] == 19 and counts[State.ON_HOLD] == 1
        closes = _audit(session, "stage_closed")
        assert sorted(e.subject for e in closes) == sorted(s.name.value for s in spec.stages)
    # re-running every close changes nothing: re-arm them all and tick again
    with uow() as session:
        for step in session.exec(select(ScheduledStep)):
            step.done_at = None
            session.add(step)
        before = {n.id: (n.state, n.version) for n in session.exec(select(Nomination))}
    jobs.tick(engine)
    with uow() as session:
        assert {n.id: (n.state, n.version) for n in session.exec(select(Nomination))} == before


def test_review_close_needs_exact_counts(uow, campaign, spec, clock, engine):
    with uow() as session:
        for _ in range(20):
            create_nomination(session, campaign, spec, State.SHORTLISTED)
    clock.set(beijing(2021, 8, 1, 0, 0))
    results = jobs.tick(engine)
    blocked = next(r for r in results if r.key == "review:close")
    assert not blocked.done and "exactly the configured counts" in blocked.summary


def test_move_window_is_audited_and_rebuilds_steps(uow, campaign, spec, clock, engine):
    new_close = beijing(2021, 6, 2, 18, 0)
    with uow() as session:
        stages.move_window(session, campaign.id, StageName.NOMINATION, actor=COMMITTEE, reason="系统故障顺延",
                           closes_at=new_close)
    with uow() as session:
        step = session.exec(select(ScheduledStep).where(ScheduledStep.key == "nomination:close")).one()
        assert step.due_at == new_close
        reminder = session.exec(select(ScheduledStep).where(ScheduledStep.key == "nomination:reminder:1")).one()
        assert reminder.due_at == beijing(2021, 6, 1, 18, 0)
        moved = _audit(session, "stage_window_moved")
        assert moved[0].actor == str(COMMITTEE) and moved[0].reason == "系统故障顺延"
    with pytest.raises(ValidationFailed, match="needs a reason"), uow() as session:
        stages.move_window(session, campaign.id, StageName.NOMINATION, actor=COMMITTEE, reason=" ",
                           closes_at=new_close)
    with pytest.raises(ValidationFailed, match="closes must be after opens"), uow() as session:
        stages.move_window(session, campaign.id, StageName.NOMINATION, actor=COMMITTEE, reason="x",
                           closes_at=beijing(2021, 3, 1))


def test_close_by_hand_then_reopen(uow, campaign, spec, clock, engine):
    with uow() as session:
        draft = create_draft(session, campaign, spec)
        stages.close_stage(session, campaign.id, StageName.NOMINATION, actor=COMMITTEE, reason="提前截止")
    assert "nomination:close" in [r.key for r in jobs.tick(engine)]
    with pytest.raises(DeadlinePassed), uow() as session:
        workflow.transition(session, draft.id, Event.SUBMIT, actor=Actor.applicant())
    with pytest.raises(ValidationFailed, match="give a new closing instant"), uow() as session:
        stages.open_stage(session, campaign.id, StageName.NOMINATION, actor=COMMITTEE, reason="重开")
    with uow() as session:
        stages.open_stage(session, campaign.id, StageName.NOMINATION, actor=COMMITTEE, reason="重开",
                          until=clock.now() + timedelta(days=1))
        assert campaigns.get_stage(session, campaign.id, StageName.NOMINATION).closed_at is None
    with uow() as session:
        assert workflow.transition(session, draft.id, Event.SUBMIT, actor=Actor.applicant())
    with uow() as session:
        step = session.exec(select(ScheduledStep).where(ScheduledStep.key == "nomination:close")).one()
        assert step.done_at is None and step.due_at == clock.now() + timedelta(days=1)


def test_personal_extension(uow, campaign, spec, clock, engine):
    with uow() as session:
        draft = create_draft(session, campaign, spec)
        submitted = create_nomination(session, campaign, spec, State.SUBMITTED)
        nominations.grant_extension(session, draft.id, until=beijing(2021, 6, 2, 12, 0), reason="材料邮寄延误",
                               actor=COMMITTEE)
        with pytest.raises(ValidationFailed, match="only a draft"):
            nominations.grant_extension(session, submitted.id, until=beijing(2021, 6, 2), reason="x", actor=COMMITTEE)
        with pytest.raises(ValidationFailed, match="needs a reason"):
            nominations.grant_extension(session, draft.id, until=beijing(2021, 6, 2), reason="", actor=COMMITTEE)
    clock.set(beijing(2021, 6, 2, 11, 59, 59, 999000))
    jobs.tick(engine)  # the nomination stage closes for everybody else meanwhile
    with uow() as session:
        assert workflow.transition(session, draft.id, Event.SUBMIT, actor=Actor.applicant())
        granted = _audit(session, "extension_granted")
        assert granted[0].subject == f"nomination:{draft.id}" and granted[0].reason == "材料邮寄延误"


def test_extension_ends_to_the_millisecond(uow, campaign, spec, clock):
    with uow() as session:
        draft = create_draft(session, campaign, spec)
        nominations.grant_extension(session, draft.id, until=beijing(2021, 6, 2, 12, 0), reason="延误", actor=COMMITTEE)
    clock.set(beijing(2021, 6, 2, 12, 0))
    with pytest.raises(DeadlinePassed, match="2021-06-02 12:00:00"), uow() as session:
        workflow.transition(session, draft.id, Event.SUBMIT, actor=Actor.applicant())


def test_upcoming_lists_next_steps_in_local_time(uow, campaign, spec, clock, engine):
    clock.set(beijing(2021, 5, 25, 0, 0))
    jobs.tick(engine)
    with uow() as session:
        steps = stages.upcoming(session, campaign.id, limit=3)
    assert [s.key for s in steps] == ["nomination:reminder:3", "nomination:reminder:1", "nomination:close"]
    assert str(steps[2]) == "北京时间 2021-05-31 18:00 推荐申报截止"
    assert steps[2].due_local.utcoffset() == timedelta(hours=8)


def test_stage_rows_record_when_steps_ran(uow, campaign, spec, clock, engine):
    clock.set(beijing(2021, 4, 1, 0, 0, 5))
    jobs.tick(engine)
    with uow() as session:
        nomination = session.exec(select(Stage).where(Stage.name == "nomination")).one()
        assert nomination.opened_at == beijing(2021, 4, 1, 0, 0, 5) and nomination.closed_at is None


@pytest.mark.parametrize(("seconds", "words"), [(0.25, "0.250秒"), (42, "42秒"), (192, "3分12秒"),
                                                (3600, "1小时0分"), (227_100, "2天15小时5分")])
def test_lateness_is_said_in_chinese(seconds, words):
    assert jobs._duration_zh(seconds) == words
