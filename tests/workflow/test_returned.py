"""退回补正: the committee sends a nomination back with what to fix and a due instant; the applicant
edits and resubmits; at the due instant without a resubmission the scheduler rejects it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from core.clock import ManualClock, use_clock
from core.errors import DeadlinePassed, GuardFailed
from nominations import drafts
from nominations.models import Nomination
from nominations.states import State
from notifications.models import OutboxMail
from stages import jobs
from tests.conftest import beijing
from tests.factories import OFFICE, create_nomination
from workflow import applicants, queries
from workflow import service as workflow
from workflow.machine import Event, edges

ITEMS = "1. 补充高级技师证书复印件；2. 单位意见须加盖公章"


pytestmark = pytest.mark.usefixtures("mail_listener")


def _send_back(uow, nomination_id: int, due) -> None:
    with uow() as session:
        workflow.transition(session, nomination_id, Event.RETURN, actor=OFFICE, reason=ITEMS,
                            data={"due_at": due.isoformat()})


def test_the_machine_has_the_returned_state() -> None:
    moves = {(s.value, e.value, d.value) for s, e, d in edges()}
    assert {("submitted", "return_for_changes", "returned"), ("screened", "return_for_changes", "returned"),
            ("returned", "resubmit", "submitted"), ("returned", "reject", "rejected")} <= moves


def test_send_back_needs_what_to_fix_and_a_due_instant_in_the_future(uow, campaign, spec, clock) -> None:
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    with pytest.raises(GuardFailed, match="needs a reason"), uow() as session:
        workflow.transition(session, n.id, Event.RETURN, actor=OFFICE, data={"due_at": "2021-06-05T18:00+08:00"})
    with pytest.raises(GuardFailed, match="due instant") as missing, uow() as session:
        workflow.transition(session, n.id, Event.RETURN, actor=OFFICE, reason=ITEMS, data={})
    assert missing.value.message_zh == "请填写补正截止时间（北京时间）"
    with pytest.raises(GuardFailed, match="in the future"), uow() as session:
        workflow.transition(session, n.id, Event.RETURN, actor=OFFICE, reason=ITEMS,
                            data={"due_at": (clock.now() - timedelta(seconds=1)).isoformat()})
    with uow() as session:
        assert session.get(Nomination, n.id).state == State.SUBMITTED


def test_returned_after_the_deadline_edited_and_resubmitted_before_the_due_instant(uow, campaign, spec,
                                                                                   clock) -> None:
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    clock.set(beijing(2021, 6, 3, 9, 0))  # screening: the nomination deadline has passed
    due = beijing(2021, 6, 10, 18, 0)
    _send_back(uow, n.id, due)
    with uow() as session:
        row = session.get(Nomination, n.id)
        assert row.state == State.RETURNED and row.extension_until == due
        mail = session.exec(select(OutboxMail).where(OutboxMail.template == "return_for_changes")).one()
        assert "2021年6月10日 18:00" in mail.subject and "补充高级技师证书复印件" in mail.text_body
        view = applicants.status_view(session, row, spec)
        assert view["editable"] and view["deadline"] == due
    with use_clock(ManualClock(due - timedelta(milliseconds=1))), uow() as session:
        row = session.get(Nomination, n.id)
        drafts.update(session, row, spec, {"honours": "重庆市技术能手；高级技师（证书已补）"})
        record = applicants.submit(session, row)
        assert record is not None and record.event == "resubmit"
    with uow() as session:
        row = session.get(Nomination, n.id)
        assert row.state == State.SUBMITTED and "证书已补" in row.honours
        events = [r.event for r in queries.history(session, n.id)]
        assert events[-2:] == ["return_for_changes", "resubmit"]
        assert session.exec(select(OutboxMail).where(OutboxMail.template == "resubmit")).one()


def test_a_resubmission_at_the_due_instant_is_refused_and_the_scheduler_rejects(uow, campaign, spec, clock,
                                                                                 engine) -> None:
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
        kept = create_nomination(session, campaign, spec, State.SUBMITTED)
    clock.set(beijing(2021, 6, 3, 9, 0))
    due = beijing(2021, 6, 10, 18, 0)
    _send_back(uow, n.id, due)
    _send_back(uow, kept.id, due + timedelta(days=1))
    with use_clock(ManualClock(due)):
        with pytest.raises(DeadlinePassed, match="2021-06-10 18:00:00") as late, uow() as session:
            applicants.submit(session, session.get(Nomination, n.id))
        assert late.value.message_zh == "补正已于北京时间2021-06-10 18:00:00截止，不能再提交"
        with pytest.raises(DeadlinePassed), uow() as session:
            drafts.update(session, session.get(Nomination, n.id), spec, {"honours": "迟到的修改"})
    clock.set(due + timedelta(seconds=30))  # the scheduler's next tick
    jobs.tick(engine)
    with uow() as session:
        rejected = session.get(Nomination, n.id)
        assert rejected.state == State.REJECTED and rejected.honours != "迟到的修改"
        last = queries.history(session, n.id)[-1]
        assert (last.event, last.reason, last.actor) == ("reject", jobs.OVERDUE_REASON, "system:scheduler")
        assert session.get(Nomination, kept.id).state == State.RETURNED  # its own due instant is later
        mails = session.exec(select(OutboxMail).where(OutboxMail.nomination_id == n.id)
                             .order_by(col(OutboxMail.id))).all()
        assert [m.template for m in mails][-1] == "reject"


def test_screening_cannot_close_while_a_nomination_is_out_for_changes(uow, campaign, spec, clock, engine) -> None:
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    clock.set(beijing(2021, 6, 20, 9, 0))
    _send_back(uow, n.id, beijing(2021, 7, 3, 18, 0))
    clock.set(beijing(2021, 7, 1, 0, 0))
    results = jobs.tick(engine)
    assert results[-1].key == "screening:close" and not results[-1].done
    assert "still submitted" in results[-1].summary
