"""The committee's workspace in a real Chromium against a real server: the screening queue's
search, filters, sort and pages live in the URL (the back button returns to the previous
list); a bulk act refused for one row says why in that row and keeps it ticked, the others
change; the review board keeps names on one line and its actions in one menu, a withdrawal asks
first; a reviewer sees nobody's scores before submitting their own, then the mean and spread.
Screenshots at 1366×900 and 390×844 go to ``JINGONG_SCREENSHOTS`` (default: the test's folder)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accounts import service as accounts
from accounts.models import Role
from campaigns import service as campaigns
from config.campaign import load_campaign
from core.clock import ManualClock, use_clock
from nominations import scores
from nominations.models import NominationKind
from nominations.states import State
from storage.db import make_engine, unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination
from tests.web.server import running_server
from tests.web.test_browser import CspWatch, browser, screenshots  # noqa: F401 - the fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
PASSWORD = "correct horse battery staple"
SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗"
LONG_NAME = "欧阳建国"


def _prepare(url: str) -> None:
    engine = make_engine(url)
    spec = load_campaign()
    clock = ManualClock(beijing(2021, 5, 1, 10, 0))
    with use_clock(clock), unit_of_work(engine) as session:
        campaign = campaigns.get_campaign(session)
        units = campaigns.list_units(session, campaign.id or 0)
        for i in range(64):  # a full page and then some; 区人力社保局 (quota 3) gets six
            unit = units[0] if i < 6 else units[1 + i % 8]
            clock.set(beijing(2021, 5, 2, 8, 0) + timedelta(minutes=i))
            create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=unit.id,
                              name=f"{SURNAMES[i % len(SURNAMES)]}师傅{i:02d}", employer=f"重庆江津第{i % 9 + 1}机械厂",
                              technical_grade=spec.technical_grades[i % len(spec.technical_grades)],
                              position="数控车工", priority_conditions=["P1", "P2"][: i % 3])
        create_nomination(session, campaign, spec, State.SHORTLISTED, name="已入选者")
        board = [create_nomination(session, campaign, spec, State.VOTED, name=name,
                                   employer="重庆江津珞璜工业园区某某精密制造有限公司", position="钳工")
                 for name in (LONG_NAME, "何平", "罗敏")]
        rev1 = accounts.create_user(session, "rev1", PASSWORD, Role.REVIEWER)
        accounts.create_user(session, "rev2", PASSWORD, Role.REVIEWER)
        clock.set(beijing(2021, 7, 22, 9, 0))  # scores are given while the review is open
        for n, sheet in zip(board, ({"skill": 27, "innovation": 25, "mentoring": 17, "conduct": 18},
                                    {"skill": 22, "innovation": 20, "mentoring": 14, "conduct": 15}), strict=False):
            scores.submit(session, rev1, n, spec, sheet)
    engine.dispose()


#: the server's instant: the review is open (the screening queue's acts have no window of their own)
IN_REVIEW = "2021-07-22T10:00:00+08:00"


def _login(page: Any, username: str, password: str, target: str) -> None:
    page.goto(f"/committee/login?next={target}")
    page.fill("[name=username]", username)
    page.fill("[name=password]", password)
    with page.expect_navigation():
        page.click("button.primary")


def _shoot(chromium: Any, watch: CspWatch, url: str, path: str, name: str, folder: Path, cookies: list[Any],
           before: Any = None) -> None:
    for size, viewport in SIZES.items():
        page = watch.page(chromium, url, viewport=viewport, is_mobile=size == "phone", device_scale_factor=1)
        page.context.add_cookies(cookies)
        page.goto(path)
        if before is not None:
            before(page)
        page.screenshot(path=str(folder / f"{name}-{size}.png"), full_page=True)
        page.close()


def test_screening_queue_review_board_and_scores(browser: Any, tmp_path: Path, screenshots: Path) -> None:  # noqa: F811
    watch = CspWatch()
    with running_server(tmp_path, IN_REVIEW, prepare=_prepare) as server:
        page = watch.page(browser, server.url, viewport=SIZES["desktop"])
        _login(page, "admin", server.admin_password, "/committee/screening")
        assert "共 64 项" in page.text_content("#list-count") and "第 1 / 2 页" in page.text_content("#list-count")
        assert page.locator("table.queue tbody tr").count() == 50
        headers = page.locator("table.queue thead th").all_text_contents()
        assert [h.strip(" ▲▼") for h in headers[1:]] == ["编号", "姓名", "推荐单位", "职务/工种", "等级", "类型",
                                                         "优先条件", "提交时间", "状态", "超名额", "材料"]
        # 超名额: only the three submitted after 区人力社保局's quota of three
        with page.expect_navigation():
            page.select_option("select[name=over]", "1")
            page.select_option("select[name=unit]", label="区人力社保局")
            page.click("form.filters button.primary")
        assert "over=1" in page.url and "unit=" in page.url and "q=" not in page.url  # no empty fields in the link
        assert sorted(page.locator("td.name a").all_text_contents()) == sorted(["刘师傅03", "陈师傅04", "杨师傅05"])
        # search and sort; the back button returns to the previous list
        page.goto("/committee/screening")
        page.fill("input[name=q]", "师傅1")
        with page.expect_navigation():
            page.press("input[name=q]", "Enter")
        assert "共 10 项" in page.text_content("#list-count")
        with page.expect_navigation():
            page.click("th >> text=姓名")
        with page.expect_navigation():
            page.click("th >> text=姓名")
        assert "sort=-name" in page.url
        names = page.locator("td.name a").all_text_contents()
        assert names == sorted(names, reverse=True)
        page.go_back()
        assert "sort=name" in page.url
        page.goto("/committee/screening?state=submitted&page=2")
        assert page.locator("table.queue tbody tr").count() == 14
        # a bulk act: the shortlisted row is refused in place and stays ticked, the others change
        page.goto("/committee/screening?state=all&sort=-id")
        for name in ("已入选者", "师傅63", "师傅62"):
            page.locator("tr", has_text=name).locator("input[name=ids]").check()
        assert "已选3项" in page.text_content("#bulk-picked")
        page.select_option("select[name=event]", "pass_screening")
        page.click("fieldset.bulk button.primary")
        page.locator("#bulk-result:has-text('未执行')").wait_for()
        refused = page.locator("tr.refused")
        assert refused.count() == 1 and "已入选者" in refused.text_content()
        assert "未执行：" in refused.locator(".row-note").text_content()
        assert refused.locator("input[name=ids]").is_checked()
        assert page.locator("tr.done").count() == 2
        assert "已更新" in page.locator("tr.done .row-note").first.text_content()
        assert "2项状态改变" in page.text_content("#bulk-result") and "1项未执行" in page.text_content("#bulk-result")
        page.screenshot(path=str(screenshots / "workspace-bulk-refused-desktop.png"), full_page=False)
        # the shortlist is saved as a whole: its search hides rows in the page and keeps their ticks
        page.goto("/committee/shortlist")
        page.fill("#row-filter", "师傅63")
        assert page.locator("#shortlist-table tbody tr:visible").count() == 1
        assert "显示1 / 3项" in page.text_content("#row-filter-count")
        assert page.locator("tr", has_text="已入选者").locator("input").is_checked()
        cookies = page.context.cookies()
        _shoot(browser, watch, server.url, "/committee/screening", "workspace-screening", screenshots, cookies)

        # the review board: the mean first, names on one line, the actions in one menu
        page.goto("/committee/review")
        rows = page.locator("table.board tbody tr")
        assert rows.count() == 3 and LONG_NAME in rows.first.text_content()
        name = rows.first.locator("td.name a")
        line = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert name.bounding_box()["height"] < 2 * line  # one line, never one character a line
        menu = rows.first.locator("details.actions")
        menu.locator("summary").click()
        assert menu.locator("button[value=vet]").is_visible()
        page.once("dialog", lambda dialog: dialog.dismiss())
        menu.locator(".danger-zone button[value=withdraw]").click()  # asked first; dismissed: nothing happens
        assert "/committee/review" in page.url and page.locator("[role=status]").count() == 0
        assert rows.first.locator("td.notes").text_content().strip() == "—"
        last = rows.nth(2)  # no scores yet: last
        last.locator("summary").click()
        last.locator("input[name=reason]").fill("政审合格，事迹突出")
        with page.expect_navigation():
            last.locator("button[value=vet]").click()
        vetted = page.locator("tr", has_text="罗敏")
        assert "确定为正式候选人：政审合格，事迹突出" in vetted.locator("td.notes").text_content()

        def open_first_menu(p: Any) -> None:
            p.locator("details.actions summary").first.click()

        _shoot(browser, watch, server.url, "/committee/review", "workspace-review", screenshots, cookies,
               before=open_first_menu)

        # a reviewer: nobody's scores before their own, then the mean and spread
        reviewer = watch.page(browser, server.url, viewport=SIZES["desktop"])
        _login(reviewer, "rev2", PASSWORD, "/committee/review")
        assert reviewer.locator("text=待您评分").count() == 3 and "69.5" not in reviewer.content()
        reviewer.locator("tr", has_text=LONG_NAME).locator("a:text-is('评分')").click()
        assert "提交您自己的评分后" in reviewer.content() and "87" not in reviewer.text_content("main")
        for code, points in {"skill": "25", "innovation": "23", "mentoring": "15"}.items():
            reviewer.fill(f"#points_{code}", points)
        reviewer.fill("#points_conduct", "21")  # above the maximum: the browser says so, nothing is sent
        reviewer.click("form.sheet button.primary")
        assert reviewer.evaluate("document.querySelector('#points_conduct').validity.rangeOverflow")
        reviewer.fill("#points_conduct", "17")
        reviewer.fill("input[name=comment_skill]", "现场操作规范")
        with reviewer.expect_navigation():
            reviewer.click("form.sheet button.primary")
        assert "评分已提交" in reviewer.text_content("[role=status]")
        total = reviewer.locator("tr.total").text_content()
        assert "83.5" in total and "80–87" in total and "3.5" in total  # (87 + 80) / 2, population sd 3.5
        reviewer_cookies = reviewer.context.cookies()
        sheet = reviewer.url.removeprefix(server.url)
        _shoot(browser, watch, server.url, sheet, "workspace-scores", screenshots, reviewer_cookies)
        other = "/committee/review/" + rows.nth(1).locator("td").first.text_content().strip()
        _shoot(browser, watch, server.url, other, "workspace-scores-before", screenshots, reviewer_cookies)
        reviewer.goto("/committee/review")
        assert "83.5" in reviewer.content()
    watch.check()


def _fits(page: Any) -> None:
    """Nothing scrolls sideways: the page is no wider than the window."""
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} is {width[0]} px wide in a {width[1]} px window"


def test_screening_cards_and_score_blocks_on_a_phone(browser: Any, tmp_path: Path, screenshots: Path) -> None:  # noqa: F811
    """At 390 px the queue is one card per nomination (tick box, name, 编号, unit, grade and type,
    state, 超名额, time, a link to the file), nothing scrolls sideways, 全选本页 and the sort are
    there without the table's header, and a bulk act's refusal is said in its card; a score sheet
    is one block per criterion with the points box the card's width, its results stacked. At
    1366 px the queue is still a table."""
    watch = CspWatch()
    with running_server(tmp_path, IN_REVIEW, prepare=_prepare) as server:
        desk = watch.page(browser, server.url, viewport=SIZES["desktop"])
        _login(desk, "admin", server.admin_password, "/committee/screening")
        assert desk.locator("table.queue thead").is_visible()
        assert desk.locator("table.queue tbody tr").first.evaluate("tr => getComputedStyle(tr).display") == "table-row"
        assert not desk.locator(".pick-all").is_visible() and not desk.locator("select[name=sort]").is_visible()
        assert not desk.locator("table.queue a.open").first.is_visible()
        desk.locator("table.queue input[name=ids]").first.check()
        assert "已选1项" in desk.text_content("#bulk-picked") and not desk.locator("#to-bulk").is_visible()
        cookies = desk.context.cookies()

        page = watch.page(browser, server.url, viewport=SIZES["phone"], is_mobile=True, device_scale_factor=1)
        page.context.add_cookies(cookies)
        page.goto("/committee/screening?state=all&sort=-id")
        _fits(page)
        page.screenshot(path=str(screenshots / "workspace-screening-top-phone.png"))
        assert not page.locator("table.queue thead").is_visible()
        cards = page.locator("table.queue tbody tr")
        assert cards.count() == 50
        card = page.locator("tr", has_text="师傅63")
        box = card.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        for label in ("编号", "推荐单位", "等级", "类型", "状态", "提交时间"):
            cell = card.locator(f"td[data-label='{label}']")
            assert cell.is_visible() and cell.inner_text().strip(), label
        said = card.locator("td[data-label='推荐单位']").evaluate("td => getComputedStyle(td, '::before').content")
        assert said == '"推荐单位："'  # each figure says what it is (the header is hidden)
        assert card.locator("a.open", has_text="查看申报").is_visible()
        tick = card.locator("input[name=ids]")
        assert tick.is_visible() and tick.bounding_box()["width"] >= 20  # a finger's target
        assert card.locator(".flag", has_text="超名额").is_visible()  # the eighth of 区农业农村委
        # 全选本页 without the header's box, and back
        page.locator(".pick-all input").check()
        assert "已选50项" in page.text_content("#bulk-picked")
        page.locator(".pick-all input").uncheck()
        assert page.text_content("#bulk-picked") == ""
        # a bulk act: the shortlisted one is refused in its card and stays ticked
        assert not page.locator("#to-bulk").is_visible()
        for name in ("已入选者", "师傅63", "师傅62"):
            page.locator("tr", has_text=name).locator("input[name=ids]").check()
        # what is ticked stays in sight at the bottom while scrolling; a tap goes to the act below the cards
        jump = page.locator("#to-bulk")
        assert jump.is_visible() and "已选3项" in jump.text_content()
        spot = jump.bounding_box()
        assert spot["y"] >= 0 and spot["y"] + spot["height"] <= SIZES["phone"]["height"]
        page.screenshot(path=str(screenshots / "workspace-screening-ticked-phone.png"))
        jump.click()
        page.wait_for_function("document.querySelector('#bulk-act').getBoundingClientRect().top < window.innerHeight")
        page.select_option("select[name=event]", "pass_screening")
        page.click("fieldset.bulk button.primary")
        page.locator("#bulk-result:has-text('未执行')").wait_for()
        refused = page.locator("tr.refused")
        assert refused.count() == 1 and "已入选者" in refused.text_content()
        note = refused.locator(".row-note")
        assert note.is_visible() and "未执行：" in note.text_content()
        inner, outer = note.bounding_box(), refused.bounding_box()
        assert outer["y"] <= inner["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
        assert refused.locator("input[name=ids]").is_checked()
        assert page.locator("tr.done").count() == 2
        _fits(page)
        refused.screenshot(path=str(screenshots / "workspace-screening-refused-card-phone.png"))
        page.screenshot(path=str(screenshots / "workspace-screening-cards-phone.png"), full_page=False)
        # the sort as a choice (the cards have no header to click)
        with page.expect_navigation():
            page.select_option("select[name=sort]", "name")
            page.click("form.filters button.primary")
        assert "sort=name" in page.url
        names = page.locator("td.name a").all_text_contents()
        assert names == sorted(names)
        _fits(page)

        page.goto("/committee/review")
        _fits(page)
        nid = page.locator("tr", has_text=LONG_NAME).get_attribute("data-id")
        page.close()

        # a reviewer scores on the phone
        reviewer = watch.page(browser, server.url, viewport=SIZES["phone"], is_mobile=True, device_scale_factor=1)
        _login(reviewer, "rev2", PASSWORD, f"/committee/review/{nid}")
        _fits(reviewer)
        points = reviewer.locator("#points_skill")
        form_box = reviewer.locator("form.sheet").bounding_box()
        assert points.bounding_box()["width"] >= form_box["width"] - 40  # the full width of its card
        reviewer.screenshot(path=str(screenshots / "workspace-score-sheet-phone.png"), full_page=True)
        for code, value in {"skill": "25", "innovation": "23", "mentoring": "15", "conduct": "17"}.items():
            reviewer.fill(f"#points_{code}", value)
        with reviewer.expect_navigation():
            reviewer.click("form.sheet button.primary")
        assert "评分已提交" in reviewer.text_content("[role=status]")
        _fits(reviewer)
        total = reviewer.locator("table.sheet.summary tr.total")
        assert total.is_visible() and "83.5" in total.inner_text()
        figures = {label: total.locator(f"td[data-label='{label}']")
                   for label in ("平均分", "标准差", "最低–最高", "人数")}
        assert all(f.is_visible() for f in figures.values())
        mean, spread = figures["平均分"].bounding_box(), figures["最低–最高"].bounding_box()
        assert spread["y"] > mean["y"]  # stacked, not one long row
        reviewer.screenshot(path=str(screenshots / "workspace-score-results-phone.png"), full_page=True)
        reviewer.goto("/committee/review")
        _fits(reviewer)
        reviewer.screenshot(path=str(screenshots / "workspace-review-phone.png"), full_page=True)
    watch.check()
