"""Browser tests: Playwright driving Debian's Chromium against a real ``jingong serve``.

The applicant submits with a photo in May 2021; the office screens and shortlists; after a
restart in July (voting open) the public deeds page shows the candidate, with a ``<script>``
in the deeds shown as text.

Every page walked runs under the real Content-Security-Policy (web/headers.py): any violation the
browser reports on its console fails the test. Screenshots of a public and a committee page, at
desktop and phone size, go to ``JINGONG_SCREENSHOTS`` (default: the test's temporary folder).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import png_bytes
from tests.web.server import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = '<script>window.__xss = 1</script>扎根一线三十年'
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
DARK_RED = "rgb(139, 0, 0)"  # the header's background in web/static/style.css


class CspWatch:
    """What the browser says about the Content-Security-Policy (and uncaught script errors) on
    every page opened through ``page``."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def page(self, browser: Any, base_url: str, **options: Any) -> Any:
        page = browser.new_page(base_url=base_url, **options)
        page.set_default_timeout(20_000)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.violations.append(f"script error: {error}"))
        return page

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(f"{message.type}: {message.text}")

    def check(self) -> None:
        assert not self.violations, "\n".join(self.violations)


def shoot(browser: Any, watch: CspWatch, base_url: str, path: str, name: str, folder: Path,
          cookies: list[Any] | None = None) -> None:
    """``path`` at desktop and phone size, with the stylesheet applied (the header is dark red)."""
    for size, viewport in SIZES.items():
        page = watch.page(browser, base_url, viewport=viewport, is_mobile=size == "phone",
                          device_scale_factor=1)
        if cookies:
            page.context.add_cookies(cookies)
        page.goto(path)
        assert page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor") == DARK_RED
        page.screenshot(path=str(folder / f"{name}-{size}.png"), full_page=True)
        page.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("JINGONG_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def test_nomination_to_public_deeds(browser: Any, tmp_path: Path, screenshots: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(40, 56))
    watch = CspWatch()
    with running_server(tmp_path, "2021-05-20T10:00:00+08:00") as server:
        page = watch.page(browser, server.url)
        # the applicant: self-nomination, saved, photo, submitted
        page.goto("/apply/self")
        for field, value in {"name": "周匠人", "birth_date": "1972-06-01", "employer": "江津齿轮厂",
                             "position": "技术员",
                             "years_of_service": "28", "phone": "13812345678", "applicant_email": "zhou@example.cn",
                             "achievements": "齿轮加工工艺改进", "applicant_signature": "周匠人",
                             "applicant_signed_date": "2021-05-20"}.items():
            page.fill(f"[name={field}]", value)
        page.select_option("[name=sex]", "男")
        page.select_option("[name=ethnicity]", "汉族")
        page.select_option("[name=education]", "大学专科")
        page.select_option("[name=political_status]", "中共党员")
        page.select_option("[name=technical_grade]", "高级技师")
        page.fill("[name=deeds]", XSS)
        page.check("input[name=priority_conditions][value=P2]")
        page.click("button[value=save]")
        page.wait_for_url("**/status/**")
        assert "草稿已保存" in page.content()
        status_url = page.url.split("?")[0]
        page.select_option("select[name=kind]", "photo")
        page.set_input_files("input[name=file]", str(photo))
        with page.expect_navigation():
            page.click("form.upload button")
        assert "材料已上传" in page.text_content("[role=status]")  # a flash, not a query string
        assert "?" not in page.url
        assert "photo.png" in page.content() and "（当前照片）" in page.content()
        with page.expect_navigation():
            page.click("button[value=submit]")
        assert page.text_content(".state") == "已提交"
        assert "申报已提交" in page.text_content("[role=status]")
        page.reload()
        assert page.locator("[role=status]").count() == 0  # shown once

        # the office: log in, pass screening, shortlist with the live counter
        page.goto("/committee/screening")
        page.wait_for_url("**/committee/login**")
        page.fill("[name=username]", "admin")
        admin_password = server.admin_password
        page.fill("[name=password]", admin_password)
        page.click("button.primary")
        page.wait_for_url("**/committee/screening")
        page.click("text=周匠人")
        page.click("button[value=pass_screening]")
        page.wait_for_selector(".state[data-state=screened]")
        page.goto("/committee/shortlist")
        assert page.text_content("#shortlist-count") == "0"
        page.check(".shortlist-box")
        assert page.text_content("#shortlist-count") == "1"
        assert "还差19名" in page.text_content("#shortlist-hint")
        with page.expect_navigation():
            page.click("#shortlist-form button.primary")
        assert "新增1名" in page.text_content("[role=status]")
        # the rest of the committee's pages, and what used to be inline handlers
        for path in ("/committee", "/committee/calendar", "/committee/review", "/committee/objections",
                     "/committee/audit", "/committee/mail", "/committee/users", "/committee/votes"):
            assert page.goto(path).ok, path
        page.goto("/committee/screening")
        with page.expect_navigation():
            page.select_option("select.autosubmit", "shortlisted")  # app.js submits the filter
        assert "state=shortlisted" in page.url and "周匠人" in page.content()
        nomination_id = page.locator("td", has_text="周匠人").locator("xpath=..").locator("td").nth(1).text_content()
        page.goto(f"/committee/nominations/{(nomination_id or '').strip()}/print")
        assert page.locator("img").evaluate("img => img.complete ? img.naturalWidth : 0") == 40
        cookies = page.context.cookies()
        shoot(browser, watch, server.url, "/committee/shortlist", "committee-shortlist", screenshots, cookies)
        page.goto(status_url)
        assert page.text_content(".state") == "初步候选人"
        assert not page.goto("/status/" + "A" * 32).ok
        assert page.locator("a.history-back").count() == 1  # the Chinese error page
        page.close()
    watch.check()

    # July: voting is open, the deeds are public
    with running_server(tmp_path, "2021-07-02T09:00:00+08:00", first_start=False) as server:
        page = watch.page(browser, server.url)
        for path in ("/", "/apply/unit", "/notice", "/commended"):
            assert page.goto(path).ok, path
        page.goto("/candidates")
        person = page.locator("li.entry", has_text="周匠人")
        assert person.count() == 1
        assert "13812345678" not in page.content() and "1972" not in page.content()
        width = person.locator("img").evaluate("img => img.complete ? img.naturalWidth : 0")
        assert width == 40  # the thumbnail of a 40-pixel photo is not enlarged
        with page.expect_navigation():
            page.click("text=周匠人")
        assert page.url.endswith("/candidates/1")  # 编号 1: the only candidate
        assert page.text_content(".deeds") == XSS  # shown as text
        assert page.evaluate("window.__xss") is None  # and never run
        assert "13812345678" not in page.content() and "1972" not in page.content()
        page.goto("/candidates")
        # a voter verifies a phone number (the console SMS gateway writes data/sms.log) and votes
        page.click("text=前往投票")
        page.wait_for_url("**/vote")
        page.select_option("select[name=kind]", "phone")
        page.fill("input[name=address]", "13900001111")
        page.click("text=获取验证码")
        assert "验证码已发送至 139****1111" in page.content()
        code = re.findall(r"验证码(\d{6})", (server.data_dir / "sms.log").read_text(encoding="utf-8"))[-1]
        page.fill("input[name=code]", code)
        with page.expect_navigation():
            page.click("form[action=\"/vote/verify\"] button")
        assert "验证成功" in page.text_content("[role=status]")
        with page.expect_navigation():
            page.click("button[aria-label=为1号周匠人投票]")
        assert page.url.endswith("/vote?voted=1#c1")  # the candidate, never the message, in the link
        assert "投票成功" in page.text_content("#c1 .said [role=status]")  # next to the button
        assert page.text_content("#c1 button") == "今日已投 ✓" and page.is_disabled("#c1 button")
        with page.expect_navigation():  # the server refuses a second vote all the same
            page.eval_on_selector("#c1 form.vote-form", "f => f.submit()")
        assert "已为该候选人投过一票" in page.text_content("#c1 .said [role=alert]")
        # the office sees the live tally and invalidates the vote with a reason
        page.goto("/committee/votes")
        page.wait_for_url("**/committee/login**")
        page.fill("[name=username]", "admin")
        page.fill("[name=password]", admin_password)
        page.click("button.primary")
        page.wait_for_url("**/committee/votes")
        assert "计数器与投票记录一致" in page.content()
        row = page.locator("table").first.locator("tr", has_text="周匠人")
        assert row.locator("td").last.text_content() == "1"
        page.fill("input[name=reason]", "核实为测试票")
        with page.expect_navigation():
            page.click("form[action$=invalidate] button")
        assert "号票已作废" in page.text_content("[role=status]")
        assert "已作废：核实为测试票" in page.content()
        assert page.locator("table").first.locator("tr", has_text="周匠人").locator("td").last.text_content() == "0"
        shoot(browser, watch, server.url, "/candidates", "public-candidates", screenshots)
        watch.check()
        # the watch itself: an inline style attribute is refused and reported
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
        page.wait_for_timeout(200)
        assert any("style" in v for v in watch.violations), "the CSP watch saw nothing"
        page.close()
