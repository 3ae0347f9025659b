"""The nominating unit's contact is mailed at each change of its nominations: its own mail with the
unit link and its quota use, through the outbox to a real SMTP server, held with the applicant's
while a stage's decisions are not announced."""

from __future__ import annotations

from sqlmodel import select

from campaigns import units
from campaigns.models import NominatingUnit
from config.campaign import StageName
from nominations.models import NominationKind
from nominations.states import State
from notifications import announce, drain, transports
from notifications.models import MailStatus, MailTemplate, OutboxMail
from tests.factories import OFFICE, create_nomination
from workflow import service as workflow
from workflow.machine import Event


def _unit_mails(session) -> list[OutboxMail]:
    query = select(OutboxMail).where(OutboxMail.template == MailTemplate.UNIT_CHANGE.value).order_by(OutboxMail.id)
    return list(session.exec(query))


def _town(session, campaign, name="吴滩镇", email="wt@jiangjin.example.cn") -> NominatingUnit:
    town = session.exec(select(NominatingUnit).where(NominatingUnit.campaign_id == campaign.id,
                                                     NominatingUnit.name == name)).one()
    units.edit_unit(session, town, {"contact_person": "陈静", "contact_email": email, "quota": "2"}, actor=OFFICE)
    return town


def test_the_units_contact_is_mailed_on_submit_and_screening(uow, engine, campaign, spec, clock, smtp_server,
                                                            mail_settings):
    with uow() as session:
        town = _town(session, campaign)
        n = create_nomination(session, campaign, spec, State.DRAFT, kind=NominationKind.UNIT, unit_id=town.id,
                              name="刘师傅", employer="重庆某齿轮有限公司")
        workflow.transition(session, n.id, Event.SUBMIT, actor=OFFICE)
        link = units.link_token(town)
    with uow() as session:
        [submitted] = _unit_mails(session)
    assert submitted.recipients == ["wt@jiangjin.example.cn"] and submitted.status == MailStatus.QUEUED
    assert submitted.subject == "【津工精匠】本单位推荐人选刘师傅：已提交"
    assert submitted.text_body.startswith("吴滩镇（陈静）：")
    assert "本单位已推荐 1 名，推荐名额 2 名。" in submitted.text_body
    assert f"http://127.0.0.1:8000/unit/{link}" in submitted.text_body and n.token not in submitted.text_body

    with uow() as session:
        workflow.transition(session, n.id, Event.PASS_SCREENING, actor=OFFICE)
    with uow() as session:
        _, screened = _unit_mails(session)
        assert screened.status == MailStatus.HELD and screened.hold_stage == StageName.SCREENING.value
        assert "通过资格审核" in screened.subject
    report = drain.drain(engine, transports.SmtpTransport.from_settings(mail_settings), settings=mail_settings)
    assert report.sent == 2  # the applicant's and the unit's submit mails; the decisions wait
    with uow() as session:
        announce.announce_stage(session, campaign.id, StageName.SCREENING, OFFICE)
    drain.drain(engine, transports.SmtpTransport.from_settings(mail_settings), settings=mail_settings)
    to_unit = [m for m in smtp_server.arrived if m.rcpt_tos == ["wt@jiangjin.example.cn"]]
    assert len(to_unit) == 2
    assert to_unit[1].message.get_body(("plain",)).get_content().startswith("吴滩镇（陈静）：")
    assert "通过资格审核" in str(to_unit[1].message["Subject"])


def test_over_quota_is_said_and_no_address_no_unit_mail(uow, campaign, spec, clock):
    with uow() as session:
        town = _town(session, campaign, "朱杨镇", "zy@jiangjin.example.cn")
        for _ in range(3):
            create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=town.id)
        silent = session.exec(select(NominatingUnit).where(NominatingUnit.name == "石门镇")).one()
        create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=silent.id)
    with uow() as session:
        mails = _unit_mails(session)
    assert [m.recipients for m in mails] == [["zy@jiangjin.example.cn"]] * 3  # 石门镇 has no address yet
    assert "本单位已推荐 3 名，推荐名额 2 名（超出名额仍可推荐，将予标注）。" in mails[-1].text_body
