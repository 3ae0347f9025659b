"""Decisions the notice leaves to the committee: a refused hand close changes nothing, a blocked
close is retried on request, and the review closes short only by an audited decision."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from audit.models import AuditEvent
from campaigns import service as campaigns
from config.campaign import StageName, Track
from core.actor import Actor
from core.errors import GuardFailed, ValidationFailed
from nominations.models import Nomination
from nominations.states import State
from stages import jobs, review
from stages.models import ScheduledStep
from tests.conftest import beijing
from tests.factories import OFFICE, create_nomination
from voting.models import Vote, VoteCounter, VoterIdentity
from workflow import service as workflow
from workflow import shortfall
from workflow.machine import Event
from workflow.models import TransitionRecord

ADMIN = Actor.system("test-admin")


def _step(session, key: str) -> ScheduledStep:
    return session.exec(select(ScheduledStep).where(ScheduledStep.key == key)).one()


def test_a_refused_hand_close_changes_nothing_the_calendar_included(uow, campaign, spec, clock, engine):
    with uow() as session:
        waiting = create_nomination(session, campaign, spec, State.SUBMITTED)
    clock.set(beijing(2021, 6, 10, 9, 0))
    jobs.tick(engine)  # screening open
    with uow() as session:
        before = campaigns.get_stage(session, campaign.id, StageName.SCREENING).closes_at
    with pytest.raises(GuardFailed, match="still submitted") as info, uow() as session:
        jobs.close_now(session, campaign.id, StageName.SCREENING, actor=ADMIN, reason="提前结束初选")
    assert "未完成初审" in info.value.message_zh
    with uow() as session:
        stage = campaigns.get_stage(session, campaign.id, StageName.SCREENING)
        assert (stage.closes_at, stage.closed_at) == (before, None)
        step = _step(session, "screening:close")
        assert (step.due_at, step.done_at, step.last_error) == (before, None, None)
        moved = session.exec(select(AuditEvent).where(AuditEvent.action == "stage_window_moved")).all()
        assert moved == []
        assert session.get(Nomination, waiting.id).state == State.SUBMITTED


def test_a_hand_close_that_passes_closes_at_once(uow, campaign, spec, clock, engine):
    clock.set(beijing(2021, 5, 20, 9, 0))
    jobs.tick(engine)
    with uow() as session:
        results = jobs.close_now(session, campaign.id, StageName.NOMINATION, actor=ADMIN, reason="提前截止")
    assert results[-1].key == "nomination:close" and all(r.done for r in results)
    with uow() as session:
        stage = campaigns.get_stage(session, campaign.id, StageName.NOMINATION)
        assert stage.closed_at == clock.now() and stage.closes_at == clock.now()


def test_retry_now_does_not_wait_for_the_retry_instant(uow, campaign, spec, clock, engine):
    with uow() as session:
        extra = [create_nomination(session, campaign, spec, State.SCREENED)]
        for _ in range(19):
            create_nomination(session, campaign, spec, State.SHORTLISTED)
    clock.set(beijing(2021, 7, 1, 0, 0))
    assert not jobs.tick(engine)[-1].done
    with uow() as session:
        workflow.transition(session, extra[0].id, Event.SHORTLIST, actor=OFFICE)
    assert jobs.tick(engine) == []  # the scheduler waits for its retry instant
    results = jobs.tick(engine, retry_blocked=True)  # `jingong tick`, the dashboard's 立即重试
    assert [r.key for r in results] == ["screening:close", "voting:open"] and all(r.done for r in results)


def _review_with(uow, campaign, spec, clock, engine, *, main: int, finalist: int, disqualified: int,
                 waiting: int = 0, votes: tuple[int, ...] = ()) -> list[int]:
    """A shortlist voted on, then in review: ``main`` and ``finalist`` placed, ``disqualified``
    failed vetting, ``waiting`` still in review (with ``votes`` each, in order); the review's close
    refused. Returns the waiting."""
    with uow() as session:
        ids = [create_nomination(session, campaign, spec, State.SHORTLISTED).id
               for _ in range(main + finalist + disqualified + waiting)]
    if votes:
        _cast(uow, campaign, clock, dict(zip(ids[main + finalist + disqualified:], votes, strict=True)))
    clock.set(beijing(2021, 7, 22, 9, 0))
    jobs.tick(engine)
    with uow() as session:
        for k, nomination_id in enumerate(ids[:main + finalist]):
            track = Track.MAIN if k < main else Track.FINALIST
            workflow.transition(session, nomination_id, Event.VET, actor=OFFICE, data={"track": track.value})
        for nomination_id in ids[main + finalist:main + finalist + disqualified]:
            workflow.transition(session, nomination_id, Event.FAIL_VETTING, actor=OFFICE, reason="政审未通过")
    clock.set(beijing(2021, 8, 1, 0, 0))
    results = jobs.tick(engine)
    assert results[-1].key == "review:close" and not results[-1].done
    return ids[main + finalist + disqualified:]


def test_review_shortfall_decided_by_the_office_admin(uow, campaign, spec, clock, engine):
    # a shortlist of 20: one fails vetting, so 10 main + 9 finalists is all there is
    _review_with(uow, campaign, spec, clock, engine, main=10, finalist=9, disqualified=1)
    with uow() as session:
        assert shortfall.shortage(session, campaign.id) == "津工精匠10/10，入围奖9/10"
        with pytest.raises(ValidationFailed, match="reason"):
            shortfall.decide(session, campaign.id, actor=ADMIN, reason=" ")
    with uow() as session:
        shortfall.decide(session, campaign.id, actor=ADMIN, reason="一名候选人政审未通过，入围奖按9名确定")
        results = jobs.run_due(session, campaign, ADMIN)
    assert results[0].key == "review:close" and results[0].done
    with uow() as session:
        decided = session.exec(select(AuditEvent).where(AuditEvent.action == shortfall.ACTION)).one()
        assert decided.reason == "一名候选人政审未通过，入围奖按9名确定"
        assert decided.data["named"] == {"main": 10, "finalist": 9} and decided.actor == str(ADMIN)
        assert campaigns.get_stage(session, campaign.id, StageName.REVIEW).closed_at is not None


def test_no_shortfall_decision_while_candidates_remain(uow, campaign, spec, clock, engine):
    [waiting] = _review_with(uow, campaign, spec, clock, engine, main=10, finalist=9, disqualified=1, waiting=1)
    with pytest.raises(GuardFailed, match="no shortfall"), uow() as session:
        shortfall.decide(session, campaign.id, actor=ADMIN, reason="想少评一名")
    with uow() as session:
        workflow.transition(session, waiting, Event.VET, actor=OFFICE, data={"track": "finalist"})
        assert shortfall.shortage(session, campaign.id) is None
        results = jobs.run_due(session, campaign, ADMIN)
    assert results[0].key == "review:close" and results[0].done


def test_a_decision_covers_only_the_counts_it_named(uow, campaign, spec, clock, engine):
    _review_with(uow, campaign, spec, clock, engine, main=10, finalist=8, disqualified=2)
    with uow() as session:
        shortfall.decide(session, campaign.id, actor=ADMIN, reason="两名候选人政审未通过")
        # before the close runs, one more fails vetting: the decision for 10 + 8 does not cover 10 + 7
        vetted = session.exec(select(Nomination).where(Nomination.track == "finalist",
                                                       Nomination.state == State.VETTED.value)
                              .order_by(col(Nomination.id))).first()
        workflow.transition(session, vetted.id, Event.FAIL_VETTING, actor=OFFICE, reason="政审未通过")
    with uow() as session:
        results = jobs.run_due(session, campaign, ADMIN)
        assert results[0].key == "review:close" and not results[0].done
    with uow() as session:
        shortfall.decide(session, campaign.id, actor=ADMIN, reason="三名候选人政审未通过，入围奖按7名确定")
        assert jobs.run_due(session, campaign, ADMIN)[0].done


def _cast(uow, campaign, clock, votes: dict[int, int]) -> None:
    """Votes as the voting stage leaves them: rows and counters (the close freezes them, where wired)."""
    with uow() as session:
        voter = VoterIdentity(campaign_id=campaign.id, kind="email", identity_hash="decisions", created_at=clock.now(),
                              created_minute=0)
        session.add(voter)
        session.flush()
        for nomination_id, count in votes.items():
            session.add(VoteCounter(nomination_id=nomination_id, campaign_id=campaign.id, votes=count))
            for slot in range(count):
                session.add(Vote(campaign_id=campaign.id, nomination_id=nomination_id, voter_id=voter.id,
                                 day="2021-07-02", slot=slot + 1, cast_at=clock.now(), minute=1, ip_hash="x",
                                 net_hash="x"))


def test_the_next_by_votes_comes_back_into_the_review(uow, campaign, spec, clock, engine):
    # 10 main + 9 finalists placed, one failed vetting; two were not selected early, with 30 and 75 votes
    left_out = _review_with(uow, campaign, spec, clock, engine, main=10, finalist=9, disqualified=1, waiting=2,
                            votes=(30, 75))
    with uow() as session:
        for nomination_id in left_out:
            workflow.transition(session, nomination_id, Event.NOT_SELECT, actor=OFFICE)
    with uow() as session:
        assert review.next_in_line(session, campaign.id)[0].id == left_out[1]
        with pytest.raises(ValidationFailed, match="reason"):
            review.bring_next(session, campaign.id, actor=ADMIN, reason="")
    with uow() as session:
        why = "一名候选人政审未通过，按得票递补"
        nomination, votes = review.bring_next(session, campaign.id, actor=ADMIN, reason=why)
        assert (nomination.id, votes, nomination.state) == (left_out[1], 75, State.VOTED)
        record = session.exec(select(TransitionRecord).where(TransitionRecord.nomination_id == left_out[1])
                              .order_by(col(TransitionRecord.id).desc())).first()
        assert (record.event, record.reason, record.data["votes"]) == ("reconsider", why, 75)
        workflow.transition(session, left_out[1], Event.VET, actor=OFFICE, data={"track": "finalist"})
        results = jobs.run_due(session, campaign, ADMIN)
    assert results[0].key == "review:close" and results[0].done
    with uow() as session:  # the review closed: no one comes back any more, and the other stays out
        assert session.get(Nomination, left_out[0]).state == State.NOT_SELECTED
        with pytest.raises(GuardFailed, match="only while the review is open"):
            review.bring_next(session, campaign.id, actor=ADMIN, reason="再递补一名")


def test_bringing_back_with_no_one_left_out_is_refused(uow, campaign, spec, clock, engine):
    _review_with(uow, campaign, spec, clock, engine, main=10, finalist=9, disqualified=1)
    with pytest.raises(GuardFailed, match="no one to bring back") as info, uow() as session:
        review.bring_next(session, campaign.id, actor=ADMIN, reason="递补")
    assert "没有可递补的人选" in info.value.message_zh
