"""Browser: the applicant saves a draft and downloads the filled 自荐表 from the status page; anyone
downloads a blank form from the home page. The browser names each file in Chinese (RFC 5987).
Screenshots of the home page's 下载 block and of the status page at desktop and phone size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.server import running_server
from tests.web.test_browser import CspWatch, browser, screenshots  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def test_forms_download_from_the_home_and_the_status_page(browser: Any, tmp_path: Path,  # noqa: F811
                                                          screenshots: Path) -> None:  # noqa: F811
    watch = CspWatch()
    with running_server(tmp_path, "2021-05-20T10:00:00+08:00") as server:
        page = watch.page(browser, server.url, accept_downloads=True)
        page.goto("/")
        with page.expect_download() as blank:
            page.click("#downloads a[href='/documents/recommend.pdf']")
        assert blank.value.suggested_filename == "附件2-推荐表.pdf"
        assert Path(blank.value.path()).read_bytes().startswith(b"%PDF")

        page.goto("/apply/self")
        page.fill("[name=name]", "吴巧匠")
        page.fill("[name=applicant_email]", "wu@example.cn")
        page.fill("[name=employer]", "江津某刺绣坊")
        page.click("button[value=save]")
        page.wait_for_url("**/status/**")
        status_path = "/" + page.url.split("?")[0].split("/", 3)[3]
        with page.expect_download() as filled:
            page.click("a[href$='/form.docx']")
        assert filled.value.suggested_filename == "附件3-自荐表-吴巧匠.docx"
        assert Path(filled.value.path()).read_bytes().startswith(b"PK")  # a .docx is a zip
        page.close()

        for size, viewport in SIZES.items():
            for path, name in (("/", "home-downloads"), (status_path, "status-form-links")):
                shot = watch.page(browser, server.url, viewport=viewport, is_mobile=size == "phone",
                                  device_scale_factor=1)
                shot.goto(path)
                target = shot.locator("#downloads" if path == "/" else "p.downloads")
                target.scroll_into_view_if_needed()
                shot.screenshot(path=str(screenshots / f"{name}-{size}.png"), full_page=True)
                shot.close()
    watch.check()
