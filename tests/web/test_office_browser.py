"""The office's pages in Debian's Chromium against a real ``jingong serve``: the dashboard (quota
bars, the submissions chart, what needs doing now), the outbox (a preview in its sandboxed frame,
release and resend by button) and the audit trail, under the real Content-Security-Policy.
Screenshots at 1366×900 and 390×844 go to ``JINGONG_SCREENSHOTS`` (default: the test's folder)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.web.server import running_server
from tests.web.test_browser import CspWatch, browser, screenshots  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def seed(database_url: str) -> None:
    """Nominations submitted over three weeks of May by several units (one over its quota), a
    few screened, one mail held by the office, some audited acts."""
    from sqlmodel import col, select

    from audit import service as audit
    from campaigns import service as campaigns
    from config.campaign import load_campaign
    from core.actor import Actor
    from core.clock import ManualClock, use_clock
    from nominations.models import NominationKind
    from notifications import outbox, transition_mail
    from notifications.models import OutboxMail
    from storage.db import make_engine, unit_of_work
    from tests.conftest import beijing
    from tests.factories import OFFICE, create_draft
    from workflow import hooks
    from workflow import service as workflow
    from workflow.machine import Event

    spec = load_campaign()
    engine = make_engine(database_url)
    installed = transition_mail.queue_transition_mail in hooks._listeners
    transition_mail.install()
    try:
        with unit_of_work(engine) as session:
            campaign = campaigns.get_campaign(session)
            units = campaigns.list_units(session, campaign.id or 0)
        names = "周李吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛"
        plan = [(3, 1), (6, 2), (8, 1), (11, 3), (12, 1), (14, 2), (17, 4), (18, 2), (19, 5)]
        k = 0
        for day, count in plan:
            for _ in range(count):
                unit = units[k % 5]
                at = beijing(2021, 5, day, 9 + k % 8, 10)
                with use_clock(ManualClock(at)), unit_of_work(engine) as session:
                    n = create_draft(session, campaign, spec, kind=NominationKind.UNIT, unit_id=unit.id,
                                     name=f"{names[k]}师傅", applicant_email=f"worker{k}@example.cn")
                    workflow.transition(session, n.id or 0, Event.SUBMIT, actor=Actor.applicant())
                    if k % 4 == 0:
                        workflow.transition(session, n.id or 0, Event.PASS_SCREENING, actor=OFFICE)
                    audit.record(session, actor=Actor.system("scheduler") if k % 3 else OFFICE,
                                 action="paper_received", subject=f"nomination:{n.id}", campaign_id=campaign.id,
                                 data={"copies": 2})
                k += 1
        with use_clock(ManualClock(beijing(2021, 5, 20, 9, 0))), unit_of_work(engine) as session:
            first = session.exec(select(OutboxMail).order_by(col(OutboxMail.id))).first()
            assert first is not None
            outbox.hold(session, first.id or 0, actor=OFFICE, reason="地址待核实")
    finally:
        if not installed:
            transition_mail.uninstall()
        engine.dispose()


def _login(page: Any, password: str, path: str) -> None:
    page.goto(path)
    page.wait_for_url("**/committee/login**")
    page.fill("[name=username]", "admin")
    page.fill("[name=password]", password)
    page.click("button.primary")
    page.wait_for_url(f"**{path}")


def _shots(browser: Any, watch: CspWatch, url: str, cookies: list[Any], folder: Path,  # noqa: F811
           pages: dict[str, str]) -> None:
    for size, viewport in SIZES.items():
        page = watch.page(browser, url, viewport=viewport, is_mobile=size == "phone", device_scale_factor=1)
        page.context.add_cookies(cookies)
        for name, path in pages.items():
            assert page.goto(path).ok, path
            page.wait_for_load_state("load")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"] + 1, f"{path} is {width}px wide at {size}"
            if page.locator("iframe.preview").count():  # the mail as the recipient sees it, at this size too
                assert "同志" in (page.frame_locator("iframe.preview").locator("body").text_content() or "")
                page.wait_for_timeout(300)  # the frame paints in its own process
                page.locator("iframe.preview").scroll_into_view_if_needed()
                page.locator("iframe.preview").screenshot(path=str(folder / f"office-{name}-frame-{size}.png"))
            page.screenshot(path=str(folder / f"office-{name}-{size}.png"), full_page=True)
        page.close()


def test_office_pages_in_the_browser(browser: Any, tmp_path: Path, screenshots: Path) -> None:  # noqa: F811
    watch = CspWatch()
    with running_server(tmp_path, "2021-05-20T10:00:00+08:00", prepare=seed) as server:
        page = watch.page(browser, server.url, viewport=SIZES["desktop"])
        _login(page, server.admin_password, "/committee")
        # the dashboard: what needs doing now, the chart with its deadline, the quota bars
        todo = page.text_content("#todo") or ""
        assert "件申报已提交、待资格审核" in todo and "封邮件已暂停" in todo
        assert page.locator("svg.chart rect.bar").count() == 29  # every day from the first submission to the deadline
        assert "截止 2021-05-31 18:00" in (page.text_content("svg.chart") or "")
        assert page.locator("table.quota tr.over").count() >= 1
        page.click("text=封邮件已暂停、待公布或放行")
        page.wait_for_url("**/committee/mail?status=held")
        assert page.locator("table.stack tbody tr").count() == 7  # 6 screening decisions wait for the announcement
        # the mail the office held: previewed as the recipient sees it, then released by button
        page.locator("table.stack tbody tr", has_text="组委会暂停").locator("a").first.click()
        page.wait_for_url("**/committee/mail/*")
        mail_path = page.url.removeprefix(server.url)
        frame = page.frame_locator("iframe.preview")
        assert "师傅" in (frame.locator("body").text_content() or "")
        assert page.text_content("#mail-status") == "已暂停"
        with page.expect_navigation():
            page.click("#act-release")
        assert "已放行" in (page.text_content("[role=status]") or "")
        deadline = datetime.now() + timedelta(seconds=20)
        while page.text_content("#mail-status") != "已发送" and datetime.now() < deadline:
            page.wait_for_timeout(500)
            page.reload()
        assert page.text_content("#mail-status") == "已发送"
        with page.expect_navigation():
            page.click("#act-resend")
        assert "已重新排队发送" in (page.text_content("[role=status]") or "")
        # the audit trail: names, the candidate, the acts just done
        page.goto("/committee/audit?action=mail.release")
        row = page.locator("table.stack tbody tr").first
        assert "放行邮件" in (row.text_content() or "")
        assert (row.locator("td").nth(4).text_content() or "").strip() not in {"", "user:admin"}
        page.goto("/committee/audit")
        assert "系统（定时任务）" in page.content() and "申请人" in page.content()
        cookies = page.context.cookies()
        page.close()
        _shots(browser, watch, server.url, cookies, screenshots, {
            "dashboard": "/committee", "outbox": "/committee/mail", "mail": mail_path, "audit": "/committee/audit"})
    watch.check()
