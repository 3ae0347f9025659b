"""The outbox is written with the state change, on both databases; held decisions wait for
their announcement; the committee's controls are audited."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from audit.models import AuditEvent
from campaigns import service as campaigns
from config.campaign import StageName
from core.errors import InvalidTransition, ValidationFailed
from nominations.models import Nomination, NominationKind
from nominations.states import State
from notifications import announce, drain, notices, outbox, transports
from notifications import queue as mail_queue
from notifications.models import MailStatus, MailTemplate, OutboxMail, message_id_for
from tests.conftest import beijing
from tests.factories import OFFICE, create_draft, create_nomination
from workflow import queries
from workflow import service as workflow
from workflow.machine import Event


def _mails(session, nomination_id=None) -> list[OutboxMail]:
    query = select(OutboxMail).order_by(OutboxMail.id)
    if nomination_id is not None:
        query = query.where(OutboxMail.nomination_id == nomination_id)
    return list(session.exec(query))


def _audit(session, action: str) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_transition_queues_its_mail_in_the_same_transaction(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
        record = queries.history(session, n.id)[-1]
    with uow() as session:
        [m] = _mails(session, n.id)
    key = f"n{n.id}:submit:t{record.id}"
    assert (m.idempotency_key, m.template, m.status) == (key, MailTemplate.SUBMIT, MailStatus.QUEUED)
    assert m.recipients == [n.applicant_email] and m.transition_id == record.id
    assert m.message_id == message_id_for(key) and m.message_id.endswith("@jingong.local>")
    assert n.name in m.subject and n.token in m.text_body
    assert m.next_attempt_at == clock.now() and m.campaign_id == campaign.id


def test_rollback_leaves_neither_the_change_nor_its_mail(uow, campaign, spec, clock):
    with uow() as session:
        n = create_draft(session, campaign, spec)
    with pytest.raises(RuntimeError), uow() as session:
        workflow.transition(session, n.id, Event.SUBMIT, actor=OFFICE)
        assert len(_mails(session, n.id)) == 1  # written inside the transaction...
        raise RuntimeError("the request failed after the change")
    with uow() as session:
        assert _mails(session, n.id) == []  # ...and gone with it
        assert session.get(Nomination, n.id).state == State.DRAFT


def test_a_mail_that_cannot_be_rendered_refuses_the_change(uow, campaign, spec, clock, monkeypatch):
    with uow() as session:
        n = create_draft(session, campaign, spec)

    def broken(template, context):
        raise KeyError("template bug")

    monkeypatch.setattr(mail_queue, "render", broken)
    with pytest.raises(KeyError), uow() as session:
        workflow.transition(session, n.id, Event.SUBMIT, actor=OFFICE)
    with uow() as session:
        assert session.get(Nomination, n.id).state == State.DRAFT and _mails(session) == []


def test_unit_nominations_mail_the_units_contact_apart(uow, campaign, spec, clock):
    with uow() as session:
        unit = campaigns.list_units(session, campaign.id)[1]
        unit.contact_email = "hr@dept.example.cn"
        session.add(unit)
        n = create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=unit.id)
    with uow() as session:
        applicants, units = _mails(session, n.id)
    assert applicants.recipients == [n.applicant_email]
    assert applicants.text_body.startswith(f"{unit.name}、{n.name}同志：")
    # the unit's own mail carries the unit link, never the applicant's status link
    assert units.recipients == ["hr@dept.example.cn"] and units.template == MailTemplate.UNIT_CHANGE
    assert "/unit/" in units.text_body and n.token not in units.text_body


def test_no_address_no_mail_but_the_change_stands(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.WITHDRAWN, applicant_email=None)  # a draft
    with uow() as session:
        assert _mails(session, n.id) == [] and session.get(Nomination, n.id).state == State.WITHDRAWN


def test_a_repeated_event_sends_nothing_more(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.VOTED)
    with uow() as session:
        before = len(_mails(session, n.id))
        assert workflow.transition(session, n.id, Event.RECORD_VOTES, actor=OFFICE) is None
    with uow() as session:
        assert len(_mails(session, n.id)) == before


def test_an_objection_also_alerts_the_office(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.ON_HOLD)
    with uow() as session:
        office = [m for m in _mails(session, n.id) if m.template == MailTemplate.OBJECTION_RECEIVED]
    assert len(office) == 1 and office[0].recipients == [spec.office.email]
    assert "异议事由：test reason" in office[0].text_body


def test_decisions_are_held_until_the_stage_is_announced(uow, engine, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SHORTLISTED)
    with uow() as session:
        by_template = {m.template: m for m in _mails(session, n.id)}
    assert by_template[MailTemplate.SUBMIT].status == MailStatus.QUEUED
    for template in (MailTemplate.PASS_SCREENING, MailTemplate.SHORTLIST):
        assert by_template[template].status == MailStatus.HELD
        assert by_template[template].hold_stage == StageName.SCREENING.value

    memory = transports.MemoryTransport()
    report = drain.drain(engine, memory)
    assert report.sent == 1 and [o.message_id for o in memory.sent] == [by_template[MailTemplate.SUBMIT].message_id]

    with uow() as session:
        assert announce.announce_stage(session, campaign.id, StageName.SCREENING, OFFICE) == 2
        assert announce.announce_stage(session, campaign.id, StageName.SCREENING, OFFICE) == 0
        assert len(_audit(session, "mail.announce")) == 2
    assert drain.drain(engine, memory).sent == 2
    # after the announcement a late decision of the stage goes out at once
    with uow() as session:
        workflow.transition(session, n.id, Event.UNSHORTLIST, actor=OFFICE)
    with uow() as session:
        assert _mails(session, n.id)[-1].status == MailStatus.QUEUED


def test_review_decisions_are_held_but_votes_are_not(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.VETTED)
        announce.announce_stage(session, campaign.id, StageName.SCREENING, OFFICE)
    with uow() as session:
        status = {m.template: m.status for m in _mails(session, n.id)}
    assert status[MailTemplate.RECORD_VOTES] == MailStatus.QUEUED
    assert status[MailTemplate.VET] == MailStatus.HELD
    assert status[MailTemplate.SHORTLIST] == MailStatus.QUEUED  # released by the announcement


def test_a_scheduled_announcement_releases_when_its_time_comes(uow, engine, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SCREENED)
    at = clock.now() + timedelta(days=2)
    with uow() as session:
        assert announce.announce_stage(session, campaign.id, StageName.SCREENING, OFFICE, at=at) == 1
    memory = transports.MemoryTransport()
    assert drain.drain(engine, memory).sent == 1  # only the submit mail
    clock.set(at)
    report = drain.drain(engine, memory)
    assert (report.released, report.sent) == (1, 1)
    assert memory.sent[-1].recipients == [n.applicant_email]


def test_held_mails_go_out_once_their_stage_has_closed(uow, engine, campaign, spec, clock):
    with uow() as session:
        create_nomination(session, campaign, spec, State.REJECTED)
    memory = transports.MemoryTransport()
    assert drain.drain(engine, memory).sent == 1
    with uow() as session:
        stage = campaigns.get_stage(session, campaign.id, StageName.SCREENING)
        stage.closed_at = clock.now()
        session.add(stage)
    assert drain.drain(engine, memory).sent == 1
    with uow() as session:
        assert announce.is_announced(session, campaign.id, StageName.SCREENING)


def test_release_one_or_all_held(uow, campaign, spec, clock):
    with uow() as session:
        a = create_nomination(session, campaign, spec, State.SCREENED)
        create_nomination(session, campaign, spec, State.SCREENED)
    with uow() as session:
        held = [m for m in _mails(session) if m.status == MailStatus.HELD]
        queued = next(m for m in _mails(session) if m.status == MailStatus.QUEUED)
    assert len(held) == 2 and held[0].nomination_id == a.id
    with uow() as session:
        assert outbox.release(session, actor=OFFICE, mail_id=held[0].id) == 1
        with pytest.raises(InvalidTransition, match="not held"):
            outbox.release(session, actor=OFFICE, mail_id=queued.id)
        with pytest.raises(ValidationFailed):
            outbox.release(session, actor=OFFICE)
    with uow() as session:
        assert outbox.release(session, actor=OFFICE, all_held=True, reason="公布") == 1
        assert outbox.counts_by_status(session)[MailStatus.HELD] == 0
        assert len(_audit(session, "mail.release")) == 2


def test_holding_the_outbox_stops_everything_until_released(uow, engine, campaign, spec, clock):
    with uow() as session:
        create_nomination(session, campaign, spec, State.SUBMITTED)
        assert outbox.set_outbox_hold(session, True, actor=OFFICE, reason="核对名单")
    with uow() as session:
        assert not outbox.set_outbox_hold(session, True, actor=OFFICE)
    memory = transports.MemoryTransport()
    report = drain.drain(engine, memory)
    assert report.outbox_held and report.sent == 0 and memory.sent == []
    with uow() as session:
        assert outbox.set_outbox_hold(session, False, actor=OFFICE)
        assert [a.reason for a in _audit(session, "mail.hold")] == ["核对名单"]
        assert len(_audit(session, "mail.unhold")) == 1
    assert drain.drain(engine, memory).sent == 1


def test_resend_gets_a_new_message_id(uow, engine, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    memory = transports.MemoryTransport()
    drain.drain(engine, memory)
    with uow() as session:
        [m] = _mails(session, n.id)
        first_id = m.message_id
        with pytest.raises(InvalidTransition, match="not held"):
            outbox.release(session, actor=OFFICE, mail_id=m.id)
        again = outbox.resend(session, m.id, actor=OFFICE, reason="申请人未收到")
        assert again.status == MailStatus.QUEUED and again.message_id != first_id
    assert drain.drain(engine, memory).sent == 1
    assert memory.sent[0].message_id != memory.sent[1].message_id
    with uow() as session:
        assert len(_audit(session, "mail.resend")) == 1
        alert = notices.queue_committee_alert(session, campaign.id, "x", "y")
        with pytest.raises(InvalidTransition, match="only sent or failed"):
            outbox.resend(session, alert.id, actor=OFFICE)


def test_reminders_once_per_day_count_and_only_for_drafts(uow, campaign, spec, clock):
    with uow() as session:
        draft = create_draft(session, campaign, spec)
        submitted = create_nomination(session, campaign, spec, State.SUBMITTED)
        first = notices.queue_reminder(session, draft, 7)
        assert notices.queue_reminder(session, draft, 7).id == first.id
        assert notices.queue_reminder(session, draft, 3).id != first.id
        assert notices.queue_reminder(session, submitted, 7) is None
        assert first.template == MailTemplate.DEADLINE_REMINDER and "还剩7天" in first.subject


def test_stage_notices_reach_the_concerned_once(uow, campaign, spec, clock):
    with uow() as session:
        shortlisted = create_nomination(session, campaign, spec, State.SHORTLISTED)
        create_nomination(session, campaign, spec, State.REJECTED)
        create_nomination(session, campaign, spec, State.SCREENED)
        assert notices.queue_stage_notice(session, campaign.id, StageName.VOTING, "opened") == 1
        assert notices.queue_stage_notice(session, campaign.id, StageName.VOTING, "opened") == 0
        # closing: everybody not in a final state (the rejected one is)
        assert notices.queue_stage_notice(session, campaign.id, "voting", "closed") == 2
        with pytest.raises(ValidationFailed):
            notices.queue_stage_notice(session, campaign.id, StageName.VOTING, "shut")  # type: ignore[arg-type]
    with uow() as session:
        voting = [m for m in _mails(session) if m.template == MailTemplate.VOTING_OPEN]
    assert [m.nomination_id for m in voting] == [shortlisted.id]


def test_committee_alerts_go_to_the_office_once(uow, campaign, spec, clock):
    with uow() as session:
        a = notices.queue_committee_alert(session, campaign.id, "初选名单不足", "初步候选人仅18名")
        b = notices.queue_committee_alert(session, campaign.id, "初选名单不足", "初步候选人仅18名")
        c = notices.queue_committee_alert(session, campaign.id, "初选名单不足", "初步候选人仅18名", key="shortlist-2")
        assert a.id == b.id != c.id and a.recipients == [spec.office.email]
        with pytest.raises(ValidationFailed):
            notices.queue_committee_alert(session, campaign.id, " ", "body")
        assert session.exec(select(func.count()).select_from(OutboxMail)).one() == 2


def test_the_file_transport_writes_one_eml_per_message_id(uow, engine, campaign, spec, clock, tmp_path):
    with uow() as session:
        create_nomination(session, campaign, spec, State.SUBMITTED)
        create_nomination(session, campaign, spec, State.SUBMITTED)
    transport = transports.FileTransport(tmp_path / "outbox")
    assert drain.drain(engine, transport).sent == 2
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2 and all(b"Message-ID: <" in f.read_bytes() for f in files)
    with uow() as session:
        [first, _] = _mails(session)
    outgoing = transports.Outgoing(first.id, "a@b.c", first.recipients, first.message_id, b"again")
    assert asyncio.run(transport.send(outgoing)).outcome is transports.Outcome.SENT
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2  # a repeat overwrites its own file


def test_submissions_in_the_last_second_still_get_their_mail(uow, campaign, spec, clock):
    clock.set(beijing(2021, 5, 31, 17, 59, 59))
    with uow() as session:
        n = create_draft(session, campaign, spec)
        workflow.transition(session, n.id, Event.SUBMIT, actor=OFFICE)
    with uow() as session:
        [m] = _mails(session, n.id)
    assert "2021年5月31日 17:59" in m.text_body


def test_two_resends_of_one_mail_at_once_queue_it_once(engine, campaign, spec, clock):
    """The status check and the resend count are one statement: the second resend finds the mail
    queued again and is refused, on both databases."""
    import threading

    from storage.db import unit_of_work

    with unit_of_work(engine) as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    drain.drain(engine, transports.MemoryTransport())
    with unit_of_work(engine) as session:
        [m] = _mails(session, n.id)
    barrier, outcomes = threading.Barrier(2), []

    def resend() -> None:
        barrier.wait()
        try:
            with unit_of_work(engine) as session:
                outcomes.append(outbox.resend(session, m.id, actor=OFFICE).resends)
        except InvalidTransition as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=resend) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes, key=str) == [1, f"mail {m.id} is queued; only sent or failed mail can be resent"]
    with unit_of_work(engine, readonly=True) as session:
        [again] = _mails(session, n.id)
        assert again.resends == 1 and again.message_id == message_id_for(again.idempotency_key, 1)
        assert len(_audit(session, "mail.resend")) == 1
