"""The office's pages on both databases: the outbox (filters, preview, hold / release / resend
through the real sender), the audit trail (names, paging, filters, Excel export), the dashboard."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from accounts.models import Role, User
from audit import service as audit
from audit.models import AuditEvent
from core.actor import Actor, ActorKind
from nominations.states import State
from notifications.drain import drain
from notifications.models import MailStatus, OutboxMail
from notifications.transports import MemoryTransport
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination

pytestmark = pytest.mark.usefixtures("mail_listener")


def _mail_of(engine: Any, nomination_id: int) -> OutboxMail:
    with unit_of_work(engine, readonly=True) as session:
        return session.exec(select(OutboxMail).where(OutboxMail.nomination_id == nomination_id)).one()


def _status(engine: Any, mail_id: int) -> MailStatus:
    with unit_of_work(engine, readonly=True) as session:
        mail = session.get(OutboxMail, mail_id)
        assert mail is not None
        return MailStatus(mail.status)


def test_outbox_hold_release_resend_through_the_sender(as_member: Any, engine: Any, campaign: Any, spec: Any,
                                                       web_settings: Any) -> None:
    with unit_of_work(engine) as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED, applicant_email="zhou@example.cn")
    mail = _mail_of(engine, n.id or 0)
    member, token = as_member("office")

    listing = member.get("/committee/mail").text
    assert '<span class="status status-queued">待发送</span>' in listing and ">queued<" not in listing
    assert mail.subject in listing
    assert mail.subject in member.get("/committee/mail", params={"q": "zhou@", "status": "queued"}).text
    assert mail.subject not in member.get("/committee/mail", params={"status": "sent"}).text
    assert mail.subject not in member.get("/committee/mail", params={"q": "nobody@"}).text
    assert mail.subject in member.get("/committee/mail", params={"kind": "submit"}).text

    preview = member.get(f"/committee/mail/{mail.id}")
    assert preview.status_code == 200 and "zhou@example.cn" in preview.text and "暂停这封邮件" in preview.text
    assert f'src="/committee/mail/{mail.id}/body" sandbox' in preview.text
    body = member.get(f"/committee/mail/{mail.id}/body")
    assert body.text == mail.html_body
    assert "sandbox" in body.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in body.headers["content-security-policy"]
    assert body.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'none'" in preview.headers["content-security-policy"]  # the page itself is never framed

    # hold: the sender passes it by
    assert member.post(f"/committee/mail/{mail.id}/hold", data={"reason": "地址待核实"}).status_code == 403  # no CSRF
    held = member.post(f"/committee/mail/{mail.id}/hold", data={"csrf_token": token, "reason": "地址待核实"})
    assert held.status_code == 303 and held.headers["location"] == f"/committee/mail/{mail.id}"
    assert _status(engine, mail.id or 0) is MailStatus.HELD
    transport = MemoryTransport()
    drain(engine, transport)
    assert transport.sent == []
    page = member.get(f"/committee/mail/{mail.id}").text
    assert "已暂停" in page and "组委会暂停" in page and "放行发送" in page
    # a held mail cannot be resent: a clear message, nothing changes
    refused = member.post(f"/committee/mail/{mail.id}/resend", data={"csrf_token": token}, follow_redirects=True)
    assert refused.status_code == 200 and "该邮件当前为“已暂停”，不能重新发送" in refused.text
    assert _status(engine, mail.id or 0) is MailStatus.HELD

    # release: it leaves
    member.post(f"/committee/mail/{mail.id}/release", data={"csrf_token": token})
    drain(engine, transport)
    assert [m.mail_id for m in transport.sent] == [mail.id] and transport.sent[0].recipients == ["zhou@example.cn"]
    assert _status(engine, mail.id or 0) is MailStatus.SENT
    assert "已发送" in member.get("/committee/mail", params={"status": "sent"}).text

    # resend: again, under a new Message-ID
    member.post(f"/committee/mail/{mail.id}/resend", data={"csrf_token": token, "reason": "申请人说未收到"})
    drain(engine, transport)
    assert len(transport.sent) == 2 and transport.sent[0].message_id != transport.sent[1].message_id

    with unit_of_work(engine, readonly=True) as session:
        acts = session.exec(select(AuditEvent).where(AuditEvent.subject == f"mail:{mail.id}")
                            .order_by(AuditEvent.id)).all()
    assert [(a.action, a.actor, a.reason) for a in acts] == [
        ("mail.hold_one", "user:office", "地址待核实"), ("mail.release", "user:office", None),
        ("mail.resend", "user:office", "申请人说未收到")]
    trail_page = member.get("/committee/audit", params={"action": "mail.resend"}).text
    assert "重新发送邮件" in trail_page and "申请人说未收到" in trail_page


def test_outbox_is_the_office_admins(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    with unit_of_work(engine) as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    mail = _mail_of(engine, n.id or 0)
    reviewer, token = as_member("rev", Role.REVIEWER)
    assert reviewer.get("/committee/mail").status_code == 403
    assert reviewer.get(f"/committee/mail/{mail.id}/body").status_code == 403
    assert reviewer.post(f"/committee/mail/{mail.id}/hold", data={"csrf_token": token}).status_code == 403
    assert _status(engine, mail.id or 0) is MailStatus.QUEUED
    office, _ = as_member("office")
    assert office.get("/committee/mail/999999").status_code == 404


def test_outbox_pages(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    with unit_of_work(engine) as session:
        for i in range(55):
            create_nomination(session, campaign, spec, State.SUBMITTED, name=f"匠{i:02d}",
                              applicant_email=f"p{i:02d}@example.cn")
    member, _ = as_member("office")
    first = member.get("/committee/mail").text
    assert "第 1 / 2 页，共 55 条" in first and "p54@example.cn" in first and "p04@example.cn" not in first
    second = member.get("/committee/mail", params={"p": "2"}).text
    assert "p04@example.cn" in second and "p54@example.cn" not in second
    filtered = member.get("/committee/mail", params={"q": "p1", "p": "1"}).text
    assert "共 10 条" in filtered  # p10..p19


def _names(engine: Any) -> None:
    with unit_of_work(engine) as session:
        user = session.exec(select(User).where(User.username == "office")).one()
        user.display_name = "王主任"
        session.add(user)


def test_audit_trail_names_candidates_paging_and_export(as_member: Any, engine: Any, campaign: Any, spec: Any,
                                                        clock: Any) -> None:
    with unit_of_work(engine) as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED, name="周匠人")
    for i in range(120):
        clock.advance(timedelta(minutes=1))
        with unit_of_work(engine) as session:
            audit.record(session, actor=Actor(ActorKind.USER, "office"), action="paper_received",
                         subject=f"nomination:{n.id}", campaign_id=campaign.id, reason=f"第{i:03d}次")
    clock.set(beijing(2021, 5, 3, 9, 0))
    with unit_of_work(engine) as session:
        audit.record(session, actor=Actor.system("scheduler"), action="stage_opened", subject="screening",
                     campaign_id=campaign.id)
        audit.record(session, actor=Actor.applicant(), action="extension_granted", subject=f"nomination:{n.id}",
                     campaign_id=campaign.id)
    member, _ = as_member("office")  # logged in now: the clock has moved on
    _names(engine)

    page = member.get("/committee/audit").text
    assert "第 1 / 2 页" in page and page.count('data-label="时间"') == 100
    assert "系统（定时任务）" in page and "申请人" in page and "王主任" in page and "user:office<" not in page
    assert f'<a href="/committee/nominations/{n.id}">周匠人（{n.id}）</a>' in page
    assert "第119次" in page and "第000次" not in page  # newest first
    second = member.get("/committee/audit", params={"p": "2"}).text
    assert "第000次" in second and "提交申报" in second  # the state change, older, on the last page
    assert "2021-05-03 09:00" in page  # one date format, Beijing time

    by_name = member.get("/committee/audit", params={"actor": "王主任"}).text
    assert "系统（定时任务）" not in by_name and "登录" in by_name  # logins belong to no campaign, shown too
    papers = member.get("/committee/audit", params={"actor": "王主任", "action": "paper_received"}).text
    assert "第 1 / 2 页，共 120 条" in papers
    one_day = member.get("/committee/audit", params={"since": "2021-05-03", "until": "2021-05-03"}).text
    assert "共 3 条" in one_day and "开启阶段" in one_day and "个人延期" in one_day and "登录" in one_day
    bad = member.get("/committee/audit", params={"since": "2021-13-40"})
    assert bad.status_code == 422 and "日期格式" in bad.text

    export = member.get("/committee/exports/audit.xlsx", params={"actor": "王主任", "action": "paper_received"})
    assert export.status_code == 200
    ws = load_workbook(io.BytesIO(export.content)).active
    assert "操作记录" in ws["A1"].value
    assert [c.value for c in ws[2]][:6] == ["时间（北京时间）", "事项", "申报编号", "候选人", "变更 / 对象", "操作人"]
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 120 and {r[5] for r in rows} == {"王主任"} and rows[0][3] == "周匠人"
    assert isinstance(rows[0][0], datetime) and ws["A3"].number_format == "yyyy-mm-dd hh:mm"
    assert rows[0][0] > rows[-1][0]
    assert ws.auto_filter.ref == "A2:H122" and ws.freeze_panes == "A3"


def test_dashboard_at_a_glance(as_member: Any, engine: Any, campaign: Any, spec: Any, clock: Any) -> None:
    from campaigns import service as campaigns

    with unit_of_work(engine) as session:
        unit = campaigns.list_units(session, campaign.id or 0)[0]
        for _ in range(unit.quota + 1):
            create_nomination(session, campaign, spec, State.SUBMITTED, kind="unit", unit_id=unit.id)
    member, _ = as_member("office")
    page = member.get("/committee").text
    assert f"{unit.quota + 1} / {unit.quota} 超出名额" in page
    assert 'href="/committee/units"' in page
    assert f"{unit.quota + 1}</span>件申报已提交、待资格审核" in page
    assert 'href="/committee/screening?state=submitted"' in page
    assert "截止 2021-05-31 18:00" in page and "<svg class=\"chart\"" in page
    assert 'class="today"' in page  # 1 May, inside the nomination window
    clock.set(beijing(2021, 6, 2, 9, 0))
    later, _ = as_member("office2")
    after = later.get("/committee").text
    assert "每日提交申报" in after and 'class="today"' not in after
    assert f"共{unit.quota + 1}件" in page
    assert "接下来的定时步骤" in page
    reviewer, _ = as_member("rev", Role.REVIEWER)
    assert "封邮件" not in reviewer.get("/committee").text  # the outbox is the admin's


def test_every_kind_of_mail_has_a_name_in_words() -> None:
    from notifications.models import MailTemplate
    from web.office import MAIL_TEMPLATE_ZH

    assert set(MAIL_TEMPLATE_ZH) == {t.value for t in MailTemplate}
