"""Every template renders with real data; a missing variable fails here, not at send time."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import UndefinedError
from sqlmodel import select

from campaigns import service as campaigns
from config.campaign import StageName
from config.settings import get_settings
from nominations.models import NominationKind
from nominations.states import State
from notifications import notices
from notifications.models import MailTemplate, OutboxMail
from notifications.render import TEMPLATES_DIR, render, template_file
from tests.factories import OFFICE, create_nomination, open_review
from workflow import service as workflow
from workflow.machine import Event


def test_one_template_per_event_and_a_file_per_template():
    assert {e.value for e in Event} <= {t.value for t in MailTemplate}
    for template in MailTemplate:
        assert (TEMPLATES_DIR / template_file(template)).is_file(), template


@pytest.fixture
def every_mail(engine, campaign, spec, clock):
    """Drive real nominations through every event, then queue every kind of notice."""
    from storage.db import unit_of_work

    with unit_of_work(engine) as session:
        for state in State:
            create_nomination(session, campaign, spec, state)
        unit = campaigns.list_units(session, campaign.id)[0]
        unit.contact_email = "hr@unit.example.cn"
        session.add(unit)
        create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=unit.id)
        shortlisted = create_nomination(session, campaign, spec, State.SHORTLISTED)
        workflow.transition(session, shortlisted.id, Event.UNSHORTLIST, actor=OFFICE)
        for event in (Event.UPHOLD_OBJECTION, Event.DISMISS_OBJECTION):
            held = create_nomination(session, campaign, spec, State.ON_HOLD)
            workflow.transition(session, held.id, event, actor=OFFICE, reason="经核查")
        open_review(session, campaign)
        left_out = create_nomination(session, campaign, spec, State.NOT_SELECTED)
        workflow.transition(session, left_out.id, Event.RECONSIDER, actor=OFFICE, reason="按得票递补")
        returned = create_nomination(session, campaign, spec, State.RETURNED)
        workflow.transition(session, returned.id, Event.RESUBMIT, actor=OFFICE)
        draft = create_nomination(session, campaign, spec, State.DRAFT, name=None)
        notices.queue_reminder(session, draft, 3)
        notices.queue_stage_notice(session, campaign.id, StageName.SCREENING, "opened")
        notices.queue_stage_notice(session, campaign.id, StageName.SCREENING, "closed")
        notices.queue_stage_notice(session, campaign.id, StageName.VOTING, "opened")
        notices.queue_committee_alert(session, campaign.id, "推荐申报阶段已截止",
                                      "共收到申报 12 份。\n请及时组织初选。")
    with unit_of_work(engine, readonly=True) as session:
        return list(session.exec(select(OutboxMail)))


def test_every_template_renders_with_real_data(every_mail, spec):
    rendered = {m.template for m in every_mail}
    # the vote code and the objection receipt are rendered where voters and objectors act
    # (tests/voting, tests/web/test_public.py)
    assert rendered == set(MailTemplate) - {MailTemplate.TEST, MailTemplate.VOTE_CODE, MailTemplate.OBJECTION_ACK}
    base = get_settings().public_base_url
    for m in every_mail:
        assert m.subject.startswith("【津工精匠】") and "\n" not in m.subject, m.subject
        for part in (m.subject, m.text_body, m.html_body):
            assert "None" not in part and "{{" not in part, (m.template, part)
        assert m.html_body.lstrip().startswith("<!DOCTYPE html>") and "</html>" in m.html_body
        if m.template in (MailTemplate.COMMITTEE_ALERT, MailTemplate.OBJECTION_RECEIVED):
            assert m.recipients == [spec.office.email]
            assert "/status/" not in m.text_body
        elif m.template == MailTemplate.UNIT_CHANGE:  # the unit's contact: the unit link, not the applicant's
            assert m.recipients == ["hr@unit.example.cn"] and "/status/" not in m.text_body + m.html_body
            assert f"{base}/unit/" in m.text_body and f'href="{base}/unit/' in m.html_body
            assert "本单位已推荐 1 名，推荐名额 3 名。" in m.text_body
        else:
            assert f"{base}/status/" in m.text_body and f'href="{base}/status/' in m.html_body
            assert spec.office.contacts[0].phone in m.text_body and spec.office.email in m.html_body
            assert "王林" in m.text_body and spec.office.address in m.text_body


def test_decision_mails_carry_the_nomination_data(every_mail):
    vet = next(m for m in every_mail if m.template == MailTemplate.VET)
    assert "“津工精匠”正式候选人" in vet.subject and vet.context["nomination"]["name"] in vet.subject
    reject = next(m for m in every_mail if m.template == MailTemplate.REJECT)
    assert "原因：test reason" in reject.text_body
    alert = next(m for m in every_mail if m.template == MailTemplate.COMMITTEE_ALERT)
    assert "共收到申报 12 份。<br>\n请及时组织初选。" in alert.html_body
    voting = next(m for m in every_mail if m.template == MailTemplate.VOTING_OPEN)
    assert "/vote" in voting.text_body
    reminder = next(m for m in every_mail if m.template == MailTemplate.DEADLINE_REMINDER)
    assert "还剩3天" in reminder.subject and "2021年5月31日 18:00" in reminder.text_body
    assert "请填写“姓名”" in reminder.text_body


def test_a_missing_variable_fails_the_render(every_mail):
    context = dict(every_mail[0].context)
    del context["status_url"]
    with pytest.raises(UndefinedError, match="status_url"):
        render(MailTemplate(every_mail[0].template), context)
    with pytest.raises(UndefinedError):
        render(MailTemplate.VET, {k: v for k, v in context.items() if k != "nomination"})


def test_html_is_escaped_and_text_is_not(every_mail):
    context = dict(every_mail[0].context)
    context["nomination"] = {**context["nomination"], "name": "<script>alert(1)</script>"}
    out = render(MailTemplate.SUBMIT, context)
    assert "<script>" not in out.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert "<script>alert(1)</script>" in out.text


def test_rendering_is_a_pure_function(every_mail):
    m = every_mail[0]
    first, second = render(MailTemplate(m.template), m.context), render(MailTemplate(m.template), m.context)
    assert first == second
    assert (first.subject, first.text, first.html) == (m.subject, m.text_body, m.html_body)


def test_templates_are_package_data():
    assert Path(TEMPLATES_DIR, "_html.j2").is_file()
