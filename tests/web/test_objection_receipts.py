"""An objection's receipt number: given once, stored hashed; with it, received when and the outcome."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from accounts.models import Role
from core.clock import ManualClock
from objections.models import Objection
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.web.test_public import vetted

CODE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


def test_the_receipt_shows_receipt_and_outcome_and_nothing_else(client: TestClient, engine: Any, campaign: Any,
                                                                  spec: Any, clock: ManualClock,
                                                                  as_member: Any) -> None:
    n = vetted(engine, campaign, spec, name="公示人")
    clock.set(beijing(2021, 8, 10, 9, 0))
    lodged = client.post("/api/objections", json={"nomination_id": n.id, "name": "群众乙", "contact": "13800000000",
                                                  "facts": "获奖证书存疑"})
    assert lodged.status_code == 201 and CODE.fullmatch(lodged.json()["receipt"])
    receipt = lodged.json()["receipt"]
    with unit_of_work(engine, readonly=True) as session:
        row = session.exec(select(Objection)).one()
        assert row.receipt_hash and receipt.replace("-", "") not in row.receipt_hash  # only a keyed hash kept
    seen = client.post("/api/objections/receipt", json={"receipt": receipt.lower()})  # as typed on a phone
    assert seen.status_code == 200
    assert seen.json() == {"received_at": "2021-08-10T01:00:00+00:00", "status": "open", "status_zh": "核查中",
                           "ruled_at": None}
    unknown = client.post("/api/objections/receipt", json={"receipt": "0000-0000-0000"})
    assert unknown.status_code == 404 and "未找到" in unknown.json()["detail_zh"]
    assert client.post("/api/objections/receipt", json={"receipt": "x" * 40}).status_code == 422
    clock.set(beijing(2021, 8, 12, 15, 30))
    member, token = as_member("vet", Role.VETTING_OFFICER)
    assert member.post(f"/committee/objections/{lodged.json()['id']}/rule",
                       data={"decision": "dismiss", "reason": "查无实据", "csrf_token": token}).status_code == 303
    ruled = client.post("/api/objections/receipt", json={"receipt": receipt}).json()
    assert ruled["status_zh"] == "经核查异议不成立" and ruled["ruled_at"] == "2021-08-12T07:30:00+00:00"
    assert "查无实据" not in str(ruled) and "群众乙" not in str(ruled)  # the reasons and the objector stay inside


def test_the_page_gives_the_number_once_and_looks_it_up(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                                        clock: ManualClock) -> None:
    n = vetted(engine, campaign, spec, name="公示人")
    clock.set(beijing(2021, 8, 10, 9, 0))
    sent = client.post("/notice/objections", data={"nomination_id": str(n.id), "name": "群众甲",
                                                   "contact": "citizen@example.cn", "facts": "材料与事实不符"},
                       follow_redirects=True)
    found = CODE.search(sent.text.split("受理回执号：", 1)[1])
    assert found is not None
    page = client.post("/notice/receipt", data={"receipt": found.group(0)})
    assert page.status_code == 200 and "核查中" in page.text and "2021年8月10日 09:00" in page.text
    assert "材料与事实不符" not in page.text and "群众甲" not in page.text
    missing = client.post("/notice/receipt", data={"receipt": "0000-0000-0000"})
    assert missing.status_code == 404 and "未找到该回执号" in missing.text
    with unit_of_work(engine, readonly=True) as session:
        from notifications.models import OutboxMail

        ack = session.exec(select(OutboxMail).where(OutboxMail.template == "objection_ack")).one()
    assert f"受理回执号：{found.group(0)}" in ack.text_body
