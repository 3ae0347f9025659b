"""Public pages: deeds, the notice with objections, the commendation list. Escaped, no private data."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

from accounts.models import Role
from config.campaign import Track
from core.clock import ManualClock
from nominations.models import Nomination
from nominations.states import State
from objections.models import Objection, ObjectionStatus
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination
from tests.web.conftest import png_bytes


@pytest.fixture
def engine(sqlite_engine: Any) -> Any:
    return sqlite_engine


def make(engine: Any, campaign: Any, spec: Any, state: State, **overrides: Any) -> Nomination:
    with unit_of_work(engine) as session:
        return create_nomination(session, campaign, spec, state, **overrides)


def test_deeds_are_published_when_voting_opens(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                               clock: ManualClock) -> None:
    n = make(engine, campaign, spec, State.SHORTLISTED, name="李工匠", phone="13911112222",
             deeds="<script>alert(1)</script>扎根一线")
    make(engine, campaign, spec, State.SUBMITTED, name="未入围者")
    assert "李工匠" not in client.get("/candidates").text  # before voting opens
    assert client.get("/api/public/candidates").json() == []
    clock.set(beijing(2021, 7, 2, 9, 0))
    html = client.get("/candidates").text
    assert "李工匠" in html and "未入围者" not in html and 'href="/candidates/1"' in html
    page = client.get("/candidates/1").text  # the deeds are on the candidate's own page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;扎根一线" in page and "<script>alert(1)" not in page
    assert "13911112222" not in html + page and "1975" not in html + page
    rows = client.get("/api/public/candidates").json()
    assert [r["name"] for r in rows] == ["李工匠"]
    assert "phone" not in rows[0] and "birth_date" not in rows[0]
    assert n.id


def test_photo_is_public_only_for_public_candidates(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                                    clock: ManualClock) -> None:
    from tests.factories import advance
    from tests.web.test_api import form_json

    shown = client.post("/api/nominations", json=form_json()).json()
    hidden = client.post("/api/nominations", json=form_json()).json()
    for draft in (shown, hidden):
        upload = client.post(f"/api/nominations/{draft['token']}/attachments", data={"kind": "photo"},
                             files={"file": ("p.png", png_bytes(), "image/png")})
        assert upload.status_code == 201
    with unit_of_work(engine) as session:
        advance(session, session.get(Nomination, shown["id"]), State.SHORTLISTED)  # type: ignore[arg-type]
        advance(session, session.get(Nomination, hidden["id"]), State.REJECTED)  # type: ignore[arg-type]
    assert client.get(f"/public/photos/{shown['id']}").status_code == 404  # not yet published
    clock.set(beijing(2021, 7, 2, 9, 0))
    photo = client.get(f"/public/photos/{shown['id']}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(photo.content)).size == (2, 2)  # re-encoded at upload, the same picture
    assert f'src="/public/photos/{shown["id"]}?w=120"' in client.get("/candidates").text
    assert client.get(f"/public/photos/{hidden['id']}").status_code == 404


def test_office_contacts_are_on_public_pages(client: TestClient) -> None:
    html = client.get("/notice").text
    assert "王林" in html and "47535232" in html and "465217460@qq.com" in html


def vetted(engine: Any, campaign: Any, spec: Any, **overrides: Any) -> Nomination:
    return make(engine, campaign, spec, State.VETTED, track=Track.MAIN, **overrides)


def test_objection_puts_candidate_on_hold_and_is_acknowledged(client: TestClient, engine: Any, campaign: Any,
                                                              spec: Any, clock: ManualClock) -> None:
    n = vetted(engine, campaign, spec, name="公示人")
    clock.set(beijing(2021, 8, 10, 9, 0))
    page = client.get("/notice").text
    assert "公示人" in page and 'action="/notice/objections"' in page
    response = client.post("/notice/objections", data={"nomination_id": str(n.id), "name": "群众甲",
                                                       "contact": "citizen@example.cn",
                                                       "facts": "<b>材料</b>与事实不符"})
    assert response.status_code == 303
    assert response.headers["location"] == "/notice"
    assert "您的异议已收到" in client.get("/notice").text
    with unit_of_work(engine, readonly=True) as session:
        assert State(session.get(Nomination, n.id).state) == State.ON_HOLD  # type: ignore[union-attr]
        objection = session.exec(select(Objection)).one()
        assert objection.facts == "<b>材料</b>与事实不符" and objection.status == ObjectionStatus.OPEN
        from notifications.models import OutboxMail

        mails = session.exec(select(OutboxMail)).all()
    ack = next(m for m in mails if m.recipients == ["citizen@example.cn"])  # the acknowledgement
    assert ack.template == "objection_ack" and ack.text_body.startswith("群众甲：")
    assert f"您对公示人的异议已收到（编号{objection.id}）" in ack.subject
    assert "北京时间2021年8月10日 09:00" in ack.text_body
    assert "/status/" not in ack.text_body  # the objector has no status page
    assert any(spec.office.email in m.recipients for m in mails)  # the office is alerted


def test_objection_outside_the_notice_is_refused(client: TestClient, engine: Any, campaign: Any, spec: Any) -> None:
    n = vetted(engine, campaign, spec)
    response = client.post("/api/objections", json={"nomination_id": n.id, "name": "甲", "contact": "123",
                                                    "facts": "不实"})
    assert response.status_code == 422 and "公示期" in response.json()["detail_zh"]


def test_objection_needs_every_field(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                     clock: ManualClock) -> None:
    n = vetted(engine, campaign, spec)
    clock.set(beijing(2021, 8, 10, 9, 0))
    response = client.post("/notice/objections", data={"nomination_id": str(n.id), "name": "甲", "contact": "",
                                                       "facts": "x"})
    assert response.status_code == 422 and "请填写" in response.text


def test_committee_rules_on_objections(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                       clock: ManualClock, as_member: Any) -> None:
    kept, dropped = vetted(engine, campaign, spec, name="保留"), vetted(engine, campaign, spec, name="取消")
    clock.set(beijing(2021, 8, 10, 9, 0))
    for n in (kept, dropped):
        assert client.post("/api/objections", json={"nomination_id": n.id, "name": "乙", "contact": "13800000000",
                                                    "facts": "有误"}).status_code == 201
    # the nominee answers through their status page
    page = client.get(f"/status/{kept.token}").text
    assert "收到异议" in page and 'name="reply"' in page
    with unit_of_work(engine, readonly=True) as session:
        rows = {o.nomination_id: o.id for o in session.exec(select(Objection))}
    assert client.post(f"/status/{kept.token}/objections/{rows[kept.id]}/reply",
                       data={"reply": "情况属实有据"}).status_code == 303
    reviewer, rtoken = as_member("rev", Role.REVIEWER)
    assert reviewer.post(f"/committee/objections/{rows[kept.id]}/rule",
                         data={"decision": "dismiss", "reason": "查无实据", "csrf_token": rtoken}).status_code == 403
    member, token = as_member("vet", Role.VETTING_OFFICER)
    queue = member.get("/committee/objections").text
    assert "情况属实有据" in queue
    assert member.post(f"/committee/objections/{rows[kept.id]}/rule",
                       data={"decision": "dismiss", "reason": "查无实据", "csrf_token": token}).status_code == 303
    assert member.post(f"/committee/objections/{rows[dropped.id]}/rule",
                       data={"decision": "uphold", "reason": "经核实", "csrf_token": token}).status_code == 303
    with unit_of_work(engine, readonly=True) as session:
        assert State(session.get(Nomination, kept.id).state) == State.VETTED  # type: ignore[union-attr]
        assert State(session.get(Nomination, dropped.id).state) == State.DISQUALIFIED  # type: ignore[union-attr]
        statuses = {o.nomination_id: o.status for o in session.exec(select(Objection))}
    assert statuses == {kept.id: ObjectionStatus.DISMISSED, dropped.id: ObjectionStatus.UPHELD}
    again = member.post(f"/committee/objections/{rows[kept.id]}/rule",
                        data={"decision": "uphold", "reason": "x", "csrf_token": token})
    assert again.status_code == 409


def test_commended_list(client: TestClient, engine: Any, campaign: Any, spec: Any, clock: ManualClock) -> None:
    from datetime import date

    from campaigns import decisions
    from core.actor import Actor

    make(engine, campaign, spec, State.COMMENDED, track=Track.FINALIST, name="入围者")
    make(engine, campaign, spec, State.COMMENDED, track=Track.MAIN, name="精匠")
    assert "精匠<" not in client.get("/commended").text  # public with the decision (tests/web/test_public_documents.py)
    clock.set(beijing(2021, 12, 2, 9, 0))
    with unit_of_work(engine) as session:
        decisions.enter_decision(session, campaign.id, number="津人社发〔2021〕88号", decided_on=date(2021, 12, 1),
                                 actor=Actor.system("test"))
        decisions.publish_decision(session, campaign.id, actor=Actor.system("test"))
    html = client.get("/commended").text
    assert html.index("精匠") < html.index("入围者") and "津工精匠入围奖" in html
