"""Issue 15 in a real Chromium (Debian's) at 1366 × 900 and 390 × 844, against a real server:
the applicant's form (lists, errors at their fields and one summary, the photo's preview) and the
voter's phone (a short numbered list, search, a page per candidate, the message next to the button
pressed, 今日已投). Screenshots go to $JINGONG_SCREENSHOTS (else the test's folder)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.web.phone_seed import VOTING, portrait, seed_voting, voter_cookie
from tests.web.server import running_server
from tests.web.test_browser import CspWatch, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("JINGONG_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    viewport = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]


@pytest.mark.parametrize("size", SIZES)
def test_the_form_marks_each_field_and_previews_the_photo(browser: Any, tmp_path: Path, size: str) -> None:  # noqa: F811
    watch, folder = CspWatch(), shots(tmp_path)
    photo = tmp_path / "me.jpg"
    photo.write_bytes(portrait(3))
    with running_server(tmp_path) as server:
        page = watch.page(browser, server.url, viewport=SIZES[size], is_mobile=size == "phone")
        page.goto("/apply/self")
        assert page.get_attribute("[name=name]", "maxlength") == "64"  # not maxlength=&#34;64&#34;
        options = page.eval_on_selector_all("[name=ethnicity] option", "os => os.map(o => o.textContent)")
        assert options[1:3] == ["汉族", "蒙古族"] and options[-1] == "外国血统中国籍人士" and len(options) == 59
        assert "大学专科" in page.text_content("[name=education]") and "群众" in page.text_content(
            "[name=political_status]")
        page.click("button[value=save]")  # an empty form: nothing saved
        assert "/apply/self" in page.url and "请至少填写“姓名”" in page.text_content("#error-summary")
        assert page.get_attribute("[name=name]", "aria-invalid") == "true"
        page.fill("[name=name]", "周匠人")
        page.fill("[name=phone]", "12345")
        page.select_option("[name=ethnicity]", "土家族")
        page.click("button[value=save]")
        summary = page.text_content("#error-summary")
        assert "联系电话格式不正确" in summary and summary.count("联系电话") == 1
        assert page.get_attribute("[name=phone]", "aria-describedby") == "e-phone"
        assert page.text_content("#e-phone") == "联系电话格式不正确（手机号11位或座机号码）"
        assert page.input_value("[name=name]") == "周匠人" and page.input_value("[name=ethnicity]") == "土家族"
        assert page.evaluate("document.activeElement.id") == "error-summary"
        page.screenshot(path=str(folder / f"form-errors-{size}.png"), full_page=False)
        page.fill("[name=phone]", "13812345678")
        page.click("button[value=save]")
        page.wait_for_url("**/status/**")
        page.click("button[value=submit]")  # no photo yet: refused, each missing item linked
        summary = page.text_content("#error-summary")
        assert "草稿已保存，但还不能提交" in summary and "请上传一寸近期免冠照片" in summary
        assert page.get_attribute("#upload-file", "aria-invalid") == "true"
        assert page.locator(".photo-preview").is_hidden()
        page.set_input_files("#upload-file", str(photo))
        page.locator(".photo-preview img[src^='data:image/jpeg']").wait_for()
        page.locator(".photo-preview").scroll_into_view_if_needed()
        page.screenshot(path=str(folder / f"form-photo-preview-{size}.png"), full_page=False)
        with page.expect_navigation():
            page.click("form.upload button")
        assert "请上传一寸近期免冠照片" not in page.content()
    watch.check()


@pytest.mark.parametrize("size", SIZES)
def test_the_voters_phone(browser: Any, tmp_path: Path, size: str) -> None:  # noqa: F811
    watch, folder = CspWatch(), shots(tmp_path)
    made: dict[str, Any] = {}

    def prepare(url: str) -> None:
        made["ids"] = seed_voting(url, tmp_path / "data")
        made["token"] = voter_cookie(url, tmp_path / "data")

    with running_server(tmp_path, VOTING, prepare=prepare) as server:
        phone = size == "phone"
        page = watch.page(browser, server.url, viewport=SIZES[size], is_mobile=phone)
        page.goto("/candidates")
        entries = page.locator("#candidate-list li.entry")
        assert entries.count() == 22 and page.text_content("#candidate-list li.entry .no") == "1号"
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < (3300 if phone else 1800), height  # 22 entries, not 22 full deeds (9,800 px)
        thumb = page.get_attribute("#candidate-list img", "src")
        assert thumb.endswith("?w=120")
        assert page.evaluate(f"fetch('{thumb}').then(r => r.blob()).then(b => b.size)") < 15_000
        page.screenshot(path=str(folder / f"candidates-{size}.png"), full_page=True)
        page.fill("#candidate-search", "7")
        assert page.locator("#candidate-list li.entry:visible").count() == 1
        assert page.text_content("#candidate-list li.entry:visible .no") == "7号"
        page.fill("#candidate-search", "师傅")
        assert page.locator("#candidate-list li.entry:visible").count() == 11
        page.fill("#candidate-search", "没有这个人")
        assert page.locator(".search-none").is_visible()
        page.fill("#candidate-search", "")
        page.click("text=7号")
        page.wait_for_url("**/candidates/7")
        assert page.get_attribute("meta[property='og:url']", "content") == f"{server.url}/candidates/7"
        assert "7号" in page.get_attribute("meta[property='og:title']", "content")
        assert "扎根生产一线" in page.text_content(".deeds")
        page.screenshot(path=str(folder / f"candidate-page-{size}.png"), full_page=True)
        poster = page.request.get("/candidates/7/poster.png")
        assert poster.status == 200 and poster.body()[:8] == b"\x89PNG\r\n\x1a\n"
        (folder / f"poster-7-{size}.png").write_bytes(poster.body())

        # a verified voter votes for 15号 at the bottom of the list
        page.context.add_cookies([{"name": "jingong_voter", "value": made["token"], "url": server.url}])
        page.goto("/vote")
        assert "7月10日 24:00" in page.text_content("main") and "7月11日 00:00" not in page.text_content("main")
        target = made["ids"][14]
        page.click(f"#c{target} button")
        page.wait_for_url(f"**/vote?voted={target}*")
        said = f"#c{target} .said [role=status]"
        assert "投票成功" in page.text_content(said)
        assert not page.locator("main > p.notice[role=status]").count()  # not at the top, off screen
        page.wait_for_timeout(300)
        assert in_view(page, said), "the message is where the eye is"
        assert page.text_content(f"#c{target} button") == "今日已投 ✓"
        assert page.is_disabled(f"#c{target} button") and not page.is_disabled(f"#c{made['ids'][0]} button")
        page.screenshot(path=str(folder / f"vote-done-{size}.png"), full_page=False)
        page.goto("/candidates/15")  # the cached page; the state is this browser's own
        assert page.text_content(".vote-form button") == "今日已投 ✓"
        page.click("a[href='/candidates']")
        page.goto("/candidates/16")
        assert page.text_content(".vote-form button") == "为TA投票"
    watch.check()
