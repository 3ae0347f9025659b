"""The transparency page's own check in a real Chromium against a real server: the receipt's hash
and the Merkle root computed in the page (crypto.subtle) match the published root; a proof whose
row was altered on the way fails; no CSP violation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from campaigns import service as campaigns
from config.campaign import load_campaign
from config.settings import Settings
from core.clock import ManualClock, use_clock
from nominations.states import State
from storage.db import make_engine, unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination
from tests.voting.test_publication import _close, _votes
from tests.web.server import running_server
from tests.web.test_browser import CspWatch, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_page_checks_a_receipt_itself(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    codes: dict[str, int] = {}

    def publish(url: str) -> None:
        engine = make_engine(url)
        spec = load_campaign()
        with use_clock(ManualClock(beijing(2021, 5, 1, 10, 0))) as clock:
            with unit_of_work(engine) as session:
                campaign = campaigns.get_campaign(session)
                ids = [create_nomination(session, campaign, spec, State.SHORTLISTED, name=f"候选{i}").id or 0
                       for i in range(3)]
            clock.set(beijing(2021, 7, 2, 9, 0))
            codes.update(_votes(engine, campaign, ids, clock))
            clock.set(beijing(2021, 7, 11, 0, 0))
            _close(engine, campaign, Settings.model_validate({"JINGONG_DATA_DIR": str(tmp_path / "data")}))
        engine.dispose()

    watch = CspWatch()
    with running_server(tmp_path, "2021-07-12T10:00:00+08:00", prepare=publish) as server:
        page = watch.page(browser, server.url)
        page.goto("/transparency")
        page.fill("#proof-code", list(codes)[6].lower())
        page.click("#proof-check button")
        page.locator("#proof-result:has-text('验证')").wait_for(timeout=20000)
        assert "验证通过" in page.text_content("#proof-result")
        assert page.get_attribute("#proof-result", "data-root") == page.get_attribute("#merkle-root", "data-root")
        shots = Path(os.environ.get("JINGONG_SCREENSHOTS") or tmp_path)
        page.screenshot(path=str(shots / "transparency.png"), full_page=True)

        def altered(route: Any) -> None:
            answer = route.fetch()
            body = answer.json()
            body["row"] = body["row"].rsplit(",", 1)[0] + ",invalid:other"
            route.fulfill(response=answer, body=json.dumps(body))

        page.route("**/api/transparency/proof*", altered)
        page.click("#proof-check button")
        page.locator("#proof-result:has-text('失败')").wait_for(timeout=20000)
        assert "验证失败" in page.text_content("#proof-result")
        page.unroute("**/api/transparency/proof*")
        page.fill("#proof-code", "0000-0000-0000")
        page.click("#proof-check button")
        page.locator("#proof-result:has-text('没有该回执')").wait_for(timeout=20000)
        page.goto("/receipt")
        page.fill("input[name=code]", list(codes)[0])
        with page.expect_navigation():
            page.click("form button")
        assert "该票已作废，类别：程序或批量刷票" in page.text_content("#receipt-status")
        page.screenshot(path=str(shots / "receipt.png"), full_page=True)
        watch.check()
