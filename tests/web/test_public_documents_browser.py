"""The 公示 page and a winner's page in a real Chromium against a real server, after the notice has
expired and the office has published the commendation decision: screenshots at desktop (1366×900)
and phone (390×844) size, no Content-Security-Policy violation, the photo shown."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from campaigns import decisions
from campaigns import service as campaigns
from config.campaign import Track, load_campaign
from core.actor import Actor
from core.clock import ManualClock, use_clock
from nominations import attachments
from nominations.models import AttachmentKind
from nominations.states import State
from storage.db import make_engine, unit_of_work
from tests.conftest import beijing
from tests.factories import advance, create_draft
from tests.web.server import running_server
from tests.web.test_browser import CspWatch, browser, screenshots  # noqa: F401 - the fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
PEOPLE = [("王建国", "重庆江津某齿轮有限公司", Track.MAIN), ("丁小兰", "江津区某数控机床厂", Track.MAIN),
          ("李明", "重庆某电力工程公司", Track.MAIN), ("马德胜", "江津区中医院", Track.FINALIST),
          ("刘芳", "江津区某食品公司", Track.FINALIST)]
DEEDS = ("扎根数控加工一线二十六年，带出徒弟四十余名。主持攻关齿轮精密磨削工艺，将合格率由92%提高到99.6%，"
         "每年为企业节约成本三百余万元。多次在区级技能大赛中获一等奖，所创“丁氏对刀法”在全区推广。")

ACHIEVEMENTS = "精密磨削工装一项（国家实用新型专利）"


def portrait(path: Path) -> None:
    image = Image.new("RGB", (300, 400), (196, 170, 150))
    for y in range(120, 400):  # a plain figure: shoulders and a head
        for x in range(60, 240):
            image.putpixel((x, y), (40, 60, 110))
    for y in range(40, 150):
        for x in range(105, 195):
            image.putpixel((x, y), (230, 200, 175))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())


def test_notice_and_winner_pages(browser: Any, tmp_path: Path, screenshots: Path) -> None:  # noqa: F811
    ids: list[int] = []

    def prepare(url: str) -> None:
        engine = make_engine(url)
        spec = load_campaign()
        with use_clock(ManualClock(beijing(2021, 5, 1, 10, 0))) as clock:
            with unit_of_work(engine) as session:
                campaign = campaigns.get_campaign(session)
                for name, employer, track in PEOPLE:
                    draft = create_draft(session, campaign, spec, name=name, employer=employer, position="高级技师",
                                         deeds=DEEDS.replace("丁", name[0]), achievements=ACHIEVEMENTS)
                    if name == "丁小兰":
                        picture = tmp_path / "photo.jpg"
                        portrait(picture)
                        upload = attachments.Upload("photo.jpg", picture, size=picture.stat().st_size)
                        attachments.judge(upload, AttachmentKind.PHOTO, photo_max_bytes=5 * 1024 * 1024)
                        attachments.store(session, draft.token, AttachmentKind.PHOTO, upload,
                                          tmp_path / "data" / "uploads")
                    advance(session, draft, State.PUBLICIZED, track=track)
                    ids.append(draft.id or 0)
            clock.set(beijing(2021, 10, 20, 9, 0))
            with unit_of_work(engine) as session:
                office = Actor.system("office")
                decisions.enter_decision(session, campaign.id or 0, number="津人社发〔2021〕88号",
                                         decided_on=date(2021, 10, 20), actor=office)
                decisions.publish_decision(session, campaign.id or 0, actor=office)
        engine.dispose()

    watch = CspWatch()
    with running_server(tmp_path, "2021-10-20T10:00:00+08:00", prepare=prepare) as server:
        for path, name in (("/notice", "notice"), (f"/commended/{ids[1]}", "winner"), ("/commended", "commended")):
            for size, viewport in SIZES.items():
                page = watch.page(browser, server.url, viewport=viewport, is_mobile=size == "phone",
                                  device_scale_factor=1)
                page.goto(path)
                if name == "winner":
                    assert page.evaluate("document.querySelector('img.winner-photo').naturalWidth") == 300
                    image = page.get_attribute("meta[property='og:image']", "content")
                    assert image.endswith(f"/public/photos/{ids[1]}")
                if name == "notice":
                    names = page.eval_on_selector_all("table.names td.name", "cells => cells.map(c => c.textContent)")
                    assert names == ["丁小兰", "王建国", "李明", "马德胜", "刘芳"]  # per award, in strokes
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{path} is wider than the {size} screen"
                page.screenshot(path=str(screenshots / f"{name}-{size}.png"), full_page=True)
                page.close()
        page = watch.page(browser, server.url, viewport=SIZES["desktop"])
        page.goto("/committee/decision")
        page.wait_for_url("**/committee/login**")
        page.fill("[name=username]", "admin")
        page.fill("[name=password]", server.admin_password)
        page.click("button.primary")
        page.wait_for_url("**/committee/decision")
        assert "已于2021年10月20日" in page.text_content("main")
        page.screenshot(path=str(screenshots / "committee-decision-desktop.png"), full_page=True)
        page.close()
    watch.check()
