"""The office's list of units (with its search and filters) and a unit's own page in a real
Chromium against a real server, at desktop (1366×900) and phone (390×844) size, nothing scrolling
sideways; screenshots to ``JINGONG_SCREENSHOTS``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from campaigns import service as campaigns
from campaigns.models import NominatingUnit
from config.campaign import load_campaign
from core.clock import ManualClock, use_clock
from nominations.models import NominationKind
from nominations.states import State
from storage.db import make_engine, unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination
from tests.web.server import running_server
from tests.web.test_browser import DARK_RED, CspWatch, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def _nominations(url: str) -> None:
    engine = make_engine(url)
    spec = load_campaign()
    with use_clock(ManualClock(beijing(2021, 5, 18, 9, 0))), unit_of_work(engine) as session:
        campaign = campaigns.get_campaign(session)
        by_name = {u.name: u for u in session.exec(select(NominatingUnit))}
        town = by_name["几江街道"]
        town.contact_person, town.phone, town.contact_email = "李明", "023-47521234", "jj@jiangjin.example.cn"
        session.add(town)
        for name, employer in (("王建国", "重庆江津某齿轮有限公司"), ("陈秀英", "江津区某食品厂"),
                               ("刘德华", "重庆某机械制造有限公司")):
            create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=town.id,
                              name=name, employer=employer)
        create_nomination(session, campaign, spec, State.DRAFT, kind=NominationKind.UNIT, unit_id=town.id,
                          name="赵师傅", employer="江津区某建筑公司")
        create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT,
                          unit_id=by_name["德感街道"].id, name="德感甲")
    engine.dispose()


def _fits(page: Any) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} is {width[0]} px wide in a {width[1]} px window"


def test_units_pages_at_desktop_and_phone(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    shots = Path(os.environ.get("JINGONG_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    watch = CspWatch()
    with running_server(tmp_path, "2021-05-20T10:00:00+08:00", prepare=_nominations) as server:
        page = watch.page(browser, server.url, viewport=SIZES["desktop"])
        page.goto("/committee/login?next=/committee/units")
        page.fill("[name=username]", "admin")
        page.fill("[name=password]", server.admin_password)
        page.click("button.primary")
        page.wait_for_url("**/committee/units")
        row = page.locator("tr", has_text="几江街道")
        assert "超出名额" in row.text_content()
        row.locator("summary", has_text="修改").click()
        row.locator("[name=contact_email]").fill("jijiang@jiangjin.example.cn")
        row.locator("[name=phone]").fill("4752")  # too short: the server refuses it
        with page.expect_navigation():
            row.locator("button.primary").click()
        assert "格式不正确" in page.text_content("[role=alert]")
        row = page.locator("tr", has_text="几江街道")
        assert row.locator("[name=contact_email]").input_value() == "jijiang@jiangjin.example.cn"  # kept
        row.locator("[name=phone]").fill("023-47521234")
        with page.expect_navigation():
            row.locator("button.primary").click()
        assert "已保存：几江街道" in page.text_content("[role=status]")
        row = page.locator("tr", has_text="几江街道")
        row.locator("summary", has_text="单位链接").click()
        link = row.locator(".unit-link").text_content().strip()
        assert link.startswith(f"{server.url}/unit/")
        cookies = page.context.cookies()
        for size, viewport in SIZES.items():
            office = watch.page(browser, server.url, viewport=viewport, is_mobile=size == "phone",
                                device_scale_factor=1)
            office.context.add_cookies(cookies)
            office.goto("/committee/units")
            assert office.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor") == DARK_RED
            _fits(office)
            office.screenshot(path=str(shots / f"committee-units-{size}.png"), full_page=True)
            # the search and filters: in the URL (no empty fields), the list narrowed, still no sideways scroll
            office.fill("input[name=q]", "李明")
            with office.expect_navigation():
                office.press("input[name=q]", "Enter")
            assert "q=" in office.url and "category=" not in office.url and "only=" not in office.url
            assert office.locator("#units tbody tr").count() == 1
            with office.expect_navigation():
                office.fill("input[name=q]", "")
                office.select_option("select[name=category]", "镇街")
                office.select_option("select[name=only]", "over")
                office.click("form.filters button.primary")
            assert "category=" in office.url and "only=over" in office.url and "q=" not in office.url
            card = office.locator("#units tbody tr")
            assert card.count() == 1 and "几江街道" in card.text_content() and "超出名额" in card.text_content()
            assert "符合条件的单位 1 个" in office.text_content("#units-count")
            box = card.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
            if size == "phone":  # a card: the header hidden, each figure says what it is
                assert not office.locator("#units thead").is_visible()
                assert card.evaluate("tr => getComputedStyle(tr).display") == "block"
            _fits(office)
            office.screenshot(path=str(shots / f"committee-units-filtered-{size}.png"), full_page=True)
            office.close()
            unit = watch.page(browser, server.url, viewport=viewport, is_mobile=size == "phone",
                              device_scale_factor=1)
            unit.goto(link)
            assert "已推荐 3 / 名额 2，超出名额仍可推荐，将予标注" in unit.text_content("#quota")
            assert unit.locator("#nominations li").count() == 4 and "德感甲" not in unit.content()
            unit.screenshot(path=str(shots / f"unit-{size}.png"), full_page=True)
            unit.close()
        watch.check()
