"""The formal public documents on the web: the 公示 page and PDF (stroke order, 公示期满), the
commendation decision entered and published by the office, /commended, a winner's page."""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from fastapi.testclient import TestClient
from sqlmodel import select

from accounts.models import Role
from audit.models import AuditEvent
from config.campaign import Track
from core.clock import ManualClock
from nominations.models import Nomination
from nominations.states import State
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination

NAMES = ["王小明", "李四", "丁一", "马力"]  # in strokes: 丁 2, 马 3, 王 4, 李 7
BY_STROKES = ["丁一", "马力", "王小明", "李四"]


def formal(engine: Any, campaign: Any, spec: Any, state: State = State.VETTED) -> list[Nomination]:
    with unit_of_work(engine) as session:
        made = [create_nomination(session, campaign, spec, state, name=name, employer=f"{name}所在公司",
                                  achievements="发明一种焊接工装", deeds=f"{name}扎根一线三十年")
                for name in NAMES]
        made.append(create_nomination(session, campaign, spec, state, track=Track.FINALIST, name="于伟"))
        return made


def in_order(html: str, names: list[str]) -> bool:
    positions = [html.index(f">{name}<") for name in names]
    return positions == sorted(positions)


def test_the_notice_page_has_the_formal_wording_in_stroke_order(client: TestClient, engine: Any, campaign: Any,
                                                                 spec: Any, clock: ManualClock) -> None:
    formal(engine, campaign, spec)
    before = client.get("/notice").text
    assert "正式候选人名单将于公示期开始时在本页发布" in before and "丁一" not in before
    clock.set(beijing(2021, 8, 2, 9, 0))
    html = client.get("/notice").text
    assert "<title>江津区第三届“津工精匠”正式候选人公示</title>" in html
    assert "（津人社发〔2021〕36号）" in html and "2021年8月1日至2021年8月31日" in html
    assert "书面反映" in html and "电话反映" in html and "47535232" in html
    assert in_order(html, BY_STROKES) and html.index(">李四<") < html.index(">于伟<")
    assert 'action="/notice/objections"' in html and 'href="/notice.pdf"' in html
    pdf = client.get("/notice.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_the_notice_says_when_it_expired(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                         clock: ManualClock) -> None:
    formal(engine, campaign, spec)
    clock.set(beijing(2021, 8, 31, 23, 0))
    assert "公示期满" not in client.get("/notice").text
    clock.set(beijing(2021, 9, 1, 8, 0))
    html = client.get("/notice").text
    assert "本次公示已于2021年8月31日期满" in html and "未收到异议" in html
    assert 'action="/notice/objections"' not in html  # no more objections online
    assert in_order(html, BY_STROKES)  # the list stays on the page


def test_commended_is_published_with_the_decision(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                                  clock: ManualClock, as_member: Any) -> None:
    people = formal(engine, campaign, spec, State.PUBLICIZED)
    clock.set(beijing(2021, 10, 20, 9, 0))
    office, token = as_member("office")  # logged in now: a session from May would have timed out
    waiting = client.get("/commended").text
    assert "表彰决定尚未发布" in waiting and "预计于2021年11月30日前发布" in waiting and "丁一" not in waiting
    assert client.get("/commended/decision.pdf").status_code == 404
    assert client.get(f"/commended/{people[0].id}").status_code == 404

    bad = office.post("/committee/decision", data={"number": "津人社发〔2021〕88号", "decided_on": "2021-08-15",
                                                   "csrf_token": token})
    assert bad.status_code == 422 and "不能早于社会公示期满" in bad.text
    assert 'value="津人社发〔2021〕88号"' in bad.text  # what was typed is kept
    entered = office.post("/committee/decision", data={"number": "津人社发〔2021〕88号", "decided_on": "2021-10-20",
                                                       "csrf_token": token})
    assert entered.status_code == 303
    page = office.get("/committee/decision").text
    assert "丁一、马力、王小明、李四" in page and 'action="/committee/decision/publish"' in page
    draft = office.get("/committee/decision/draft.docx")
    assert draft.status_code == 200 and "命名丁一等4名同志" in "".join(
        p.text for p in Document(io.BytesIO(draft.content)).paragraphs)
    assert "表彰决定尚未发布" in client.get("/commended").text  # entered, not yet published
    assert client.get("/commended/decision.docx").status_code == 404

    assert office.post("/committee/decision/publish", data={"csrf_token": token}).status_code == 303
    html = client.get("/commended").text
    assert "表彰决定尚未发布" not in html and "津人社发〔2021〕88号" in html
    assert "关于命名表彰江津区第三届“津工精匠”的决定" in html and in_order(html, BY_STROKES)
    assert html.index(">李四<") < html.index(">于伟<")
    pdf, docx = client.get("/commended/decision.pdf"), client.get("/commended/decision.docx")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert docx.status_code == 200 and "attachment" in docx.headers["content-disposition"]
    again = office.post("/committee/decision", data={"number": "改号", "decided_on": "2021-10-21",
                                                     "csrf_token": token})
    assert again.status_code == 409 and "已发布" in again.text
    with unit_of_work(engine, readonly=True) as session:
        acts = [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.subject == "commendation"))]
    assert acts == ["decision_entered", "decision_published"]


def test_only_the_office_admin_decides(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                       clock: ManualClock, as_member: Any) -> None:
    formal(engine, campaign, spec, State.PUBLICIZED)
    clock.set(beijing(2021, 10, 20, 9, 0))
    reviewer, token = as_member("rev", Role.REVIEWER)
    assert reviewer.get("/committee/decision").status_code == 403
    assert reviewer.post("/committee/decision", data={"number": "x", "decided_on": "2021-10-20",
                                                      "csrf_token": token}).status_code == 403
    assert client.post("/committee/decision/publish").status_code in (401, 403)
    office, otoken = as_member("office")
    nothing = office.post("/committee/decision/publish", data={"csrf_token": otoken})
    assert nothing.status_code == 404 and "请先录入" in nothing.text


def test_a_winner_page_for_the_media(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                     clock: ManualClock, as_member: Any) -> None:
    people = formal(engine, campaign, spec, State.PUBLICIZED)
    with unit_of_work(engine) as session:
        outsider = create_nomination(session, campaign, spec, State.VETTED, name="未表彰")
    clock.set(beijing(2021, 10, 20, 9, 0))
    office, token = as_member("office")  # logged in now: a session from May would have timed out
    office.post("/committee/decision", data={"number": "津人社发〔2021〕88号", "decided_on": "2021-10-20",
                                             "csrf_token": token})
    office.post("/committee/decision/publish", data={"csrf_token": token})
    page = client.get(f"/commended/{people[2].id}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>丁一</h1>" in html and "丁一扎根一线三十年" in html and "发明一种焊接工装" in html
    assert '<meta property="og:title" content="丁一：江津区第三届“津工精匠”' in html
    assert 'property="og:description" content="丁一扎根一线三十年"' in html
    assert "13" not in html.split("<main>")[1].split("</main>")[0]  # no phone number
    assert client.get(f"/commended/{outsider.id}").status_code == 404
    assert client.get("/commended/999999").status_code == 404
