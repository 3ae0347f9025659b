"""The committee dashboard: login, CSRF, roles, conflicts of interest, queues and decisions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from accounts.models import Role
from audit.models import AuditEvent
from campaigns import service as campaigns
from core.clock import ManualClock
from nominations.models import Nomination, NominationKind, PriorAward, PriorAwardKind
from nominations.states import State
from storage.db import unit_of_work
from tests.factories import create_nomination


@pytest.fixture
def engine(sqlite_engine: Any) -> Any:
    """The dashboard's pages run on SQLite here; the API tests cover PostgreSQL."""
    return sqlite_engine


def make(engine: Any, campaign: Any, spec: Any, state: State, **overrides: Any) -> Nomination:
    with unit_of_work(engine) as session:
        return create_nomination(session, campaign, spec, state, **overrides)


def state_of(engine: Any, nomination_id: int) -> State:
    with unit_of_work(engine, readonly=True) as session:
        n = session.get(Nomination, nomination_id)
        assert n is not None
        return State(n.state)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_login_page_form_with_csrf(client: TestClient, make_user: Any) -> None:
    make_user("office")
    page = client.get("/committee/login")
    token = csrf_of(page.text)
    no_token = client.post("/committee/login", data={"username": "office", "password": "correct-horse-42"})
    assert no_token.status_code == 403
    wrong = client.post("/committee/login", data={"username": "office", "password": "nope-nope", "csrf_token": token})
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    ok = client.post("/committee/login", data={"username": "office", "password": "correct-horse-42",
                                               "csrf_token": token, "next": "/committee/audit"})
    assert ok.status_code == 303 and ok.headers["location"] == "/committee/audit"
    assert client.get("/committee").status_code == 200
    dash = client.get("/committee").text
    out = client.post("/committee/logout", data={"csrf_token": csrf_of(dash)})
    assert out.status_code == 303
    assert client.get("/committee").status_code == 303


def test_login_redirect_target_stays_on_the_site(client: TestClient, make_user: Any) -> None:
    make_user("office")
    token = csrf_of(client.get("/committee/login").text)
    ok = client.post("/committee/login", data={"username": "office", "password": "correct-horse-42",
                                               "csrf_token": token, "next": "//evil.example/committee"})
    assert ok.headers["location"] == "/committee"


@pytest.mark.parametrize("path", ["/committee", "/committee/screening", "/committee/shortlist", "/committee/review",
                                  "/committee/objections", "/committee/audit", "/committee/calendar",
                                  "/committee/mail", "/committee/users", "/committee/nominations/1",
                                  "/committee/nominations/1/print", "/committee/exports/candidates.xlsx",
                                  "/committee/exports/results.xlsx", "/committee/attachments/1"])
def test_anonymous_is_sent_to_login(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/committee/login")


def test_session_expires(as_member: Any, clock: ManualClock, web_settings: Any) -> None:
    member, _ = as_member("office")
    assert member.get("/committee").status_code == 200
    clock.advance(timedelta(seconds=web_settings.session_max_age_seconds + 1))
    assert member.get("/committee").status_code == 303
    assert member.get("/api/committee/nominations").status_code == 401


def test_changes_need_the_csrf_token(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    member, token = as_member("office")
    n = make(engine, campaign, spec, State.SUBMITTED)
    refused = member.post(f"/committee/nominations/{n.id}/act", data={"event": "pass_screening"})
    assert refused.status_code == 403 and "刷新" in refused.text
    api_refused = member.post(f"/api/committee/nominations/{n.id}/events", json={"event": "pass_screening"})
    assert api_refused.status_code == 403
    assert state_of(engine, n.id or 0) == State.SUBMITTED
    ok = member.post(f"/committee/nominations/{n.id}/act", data={"event": "pass_screening", "csrf_token": token})
    assert ok.status_code == 303
    assert state_of(engine, n.id or 0) == State.SCREENED


@pytest.mark.parametrize("role, event, source, allowed", [
    (Role.REVIEWER, "pass_screening", State.SUBMITTED, True),
    (Role.REVIEWER, "reject", State.SUBMITTED, True),
    (Role.REVIEWER, "vet", State.VOTED, False),
    (Role.REVIEWER, "record_votes", State.SHORTLISTED, False),
    (Role.VETTING_OFFICER, "vet", State.VOTED, True),
    (Role.VETTING_OFFICER, "reject", State.SUBMITTED, False),
    (Role.VETTING_OFFICER, "uphold_objection", State.ON_HOLD, True),
    (Role.OFFICE_ADMIN, "record_votes", State.SHORTLISTED, True),
    (Role.OFFICE_ADMIN, "vet", State.VOTED, True),
])
def test_role_matrix(as_member: Any, engine: Any, campaign: Any, spec: Any, role: Role, event: str,
                     source: State, allowed: bool) -> None:
    member, token = as_member("m1", role)
    n = make(engine, campaign, spec, source)
    response = member.post(f"/api/committee/nominations/{n.id}/events", headers={"x-csrf-token": token},
                           json={"event": event, "reason": "理由", "track": "main"})
    if allowed:
        assert response.status_code == 200, response.text
        assert state_of(engine, n.id or 0) != source
    else:
        assert response.status_code == 403
        assert state_of(engine, n.id or 0) == source


def test_reviewer_cannot_do_office_admin_acts(as_member: Any, engine: Any, campaign: Any) -> None:
    member, token = as_member("rev", Role.REVIEWER)
    assert member.get("/committee/users").status_code == 403
    assert member.post("/committee/users", data={"csrf_token": token, "username": "x", "password": "12345678",
                                                 "role": "office_admin"}).status_code == 403
    assert member.get("/committee/mail").status_code == 403
    assert member.get("/api/committee/users").status_code == 403
    assert member.post("/committee/calendar/voting/open", data={"csrf_token": token}).status_code == 403


def test_conflict_of_interest_is_refused(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    with unit_of_work(engine, readonly=True) as session:
        unit = campaigns.list_units(session, campaign.id)[0]
    n = make(engine, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=unit.id)
    member, token = as_member("rev", Role.REVIEWER, unit_id=unit.id)
    page = member.get(f"/committee/nominations/{n.id}")
    assert "请回避" in page.text and 'name="event"' not in page.text
    response = member.post(f"/committee/nominations/{n.id}/act", data={"event": "pass_screening", "csrf_token": token})
    assert response.status_code == 403 and "回避" in response.text
    bulk = member.post("/committee/bulk", data={"ids": [str(n.id)], "event": "pass_screening", "csrf_token": token},
                       headers={"accept": "application/json"})
    assert bulk.status_code == 200 and bulk.json()["refused"] == 1  # refused in its row
    assert "回避" in bulk.json()["rows"][0]["refused_zh"]
    assert state_of(engine, n.id or 0) == State.SUBMITTED
    assert "需回避" in member.get("/committee/screening").text


def test_screening_queue_order_flags_and_prior_editions(as_member: Any, engine: Any, campaign: Any,
                                                        spec: Any) -> None:
    with unit_of_work(engine) as session:
        unit = min(campaigns.list_units(session, campaign.id), key=lambda u: u.quota)
        session.add(PriorAward(edition=2, award=PriorAwardKind.FINALIST, name="往届入围"))
    few = make(engine, campaign, spec, State.SUBMITTED, name="条件少", priority_conditions=[])
    many = make(engine, campaign, spec, State.SUBMITTED, name="条件多", priority_conditions=["P1", "P2", "P3"])
    for i in range(unit.quota + 1):
        make(engine, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=unit.id, name=f"超额{i}",
             priority_conditions=["P1"])
    make(engine, campaign, spec, State.SUBMITTED, name="往届入围", priority_conditions=["P1", "P2"])
    member, _ = as_member("rev", Role.REVIEWER)
    html = member.get("/committee/screening").text
    assert html.index("条件多") < html.index("往届入围") < html.index("超额0") < html.index("条件少")
    assert "超名额" in html and "第2届入围奖" in html
    assert few.id and many.id


def test_bulk_reject_forty_in_one_request(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    ids = [make(engine, campaign, spec, State.SUBMITTED).id for _ in range(40)]
    member, token = as_member("rev", Role.REVIEWER)
    response = member.post("/committee/bulk", data={"ids": [str(i) for i in ids], "event": "reject",
                                                    "reason": "材料不全", "csrf_token": token,
                                                    "next": "/committee/screening"})
    assert response.status_code == 303
    assert all(state_of(engine, i or 0) == State.REJECTED for i in ids)


def test_bulk_is_all_or_nothing(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    good = [make(engine, campaign, spec, State.SUBMITTED).id for _ in range(3)]
    bad = make(engine, campaign, spec, State.SHORTLISTED).id
    member, token = as_member("rev", Role.REVIEWER)
    response = member.post("/api/committee/bulk", headers={"x-csrf-token": token},
                           json={"ids": [*good, bad], "event": "reject", "reason": "材料不全"})
    assert response.status_code == 409
    assert f"nomination {bad}" in response.json()["detail"]
    assert all(state_of(engine, i or 0) == State.SUBMITTED for i in good)
    no_reason = member.post("/api/committee/bulk", headers={"x-csrf-token": token},
                            json={"ids": good, "event": "reject"})
    assert no_reason.status_code == 422 and "理由" in no_reason.json()["detail_zh"]


def test_bulk_row_by_row_through_the_api(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    good = [make(engine, campaign, spec, State.SUBMITTED).id for _ in range(3)]
    bad = make(engine, campaign, spec, State.SHORTLISTED).id
    member, token = as_member("rev", Role.REVIEWER)
    response = member.post("/api/committee/bulk", headers={"x-csrf-token": token},
                           json={"ids": [good[0], bad, *good[1:]], "event": "reject", "reason": "材料不全",
                                 "mode": "each"})
    assert response.status_code == 200
    body = response.json()
    assert (body["changed"], body["refused"], body["requested"]) == (3, 1, 4)
    rows = {r["id"]: r for r in body["rows"]}
    assert rows[bad]["changed"] is False and rows[bad]["state"] == "shortlisted" and rows[bad]["refused_zh"]
    assert rows[bad]["state_zh"] == "初步候选人"
    assert all(rows[i]["changed"] and rows[i]["state"] == "rejected" and rows[i]["refused"] is None for i in good)
    assert all(state_of(engine, i or 0) == State.REJECTED for i in good)  # the refused row held nobody back
    assert state_of(engine, bad or 0) == State.SHORTLISTED
    unknown = member.post("/api/committee/bulk", headers={"x-csrf-token": token},
                          json={"ids": good, "event": "reject", "reason": "x", "mode": "some"})
    assert unknown.status_code == 422


def test_shortlist_page_sets_the_selection(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    ids = [make(engine, campaign, spec, State.SCREENED).id for _ in range(4)]
    already = make(engine, campaign, spec, State.SHORTLISTED).id
    member, token = as_member("rev", Role.REVIEWER)
    page = member.get("/committee/shortlist").text
    assert 'id="shortlist-count"' in page and 'data-min="20"' in page and 'data-max="25"' in page
    response = member.post("/committee/shortlist", data={"ids": [str(ids[0]), str(ids[1])], "csrf_token": token})
    assert response.status_code == 303
    assert [state_of(engine, i or 0) for i in ids] == [State.SHORTLISTED, State.SHORTLISTED, State.SCREENED,
                                                     State.SCREENED]
    assert state_of(engine, already or 0) == State.SCREENED


def test_review_board_places_in_tracks_and_bars_prior_finalists(as_member: Any, engine: Any, campaign: Any,
                                                                 spec: Any) -> None:
    with unit_of_work(engine) as session:
        session.add(PriorAward(edition=1, award=PriorAwardKind.FINALIST, name="老入围"))
    main = make(engine, campaign, spec, State.VOTED, name="新人")
    barred = make(engine, campaign, spec, State.VOTED, name="老入围")
    member, token = as_member("vet", Role.VETTING_OFFICER)
    html = member.get("/committee/review").text
    assert "新人" in html and "老入围" in html
    ok = member.post(f"/committee/nominations/{main.id}/act", data={"event": "vet", "track": "finalist",
                                                                    "csrf_token": token})
    assert ok.status_code == 303 and state_of(engine, main.id or 0) == State.VETTED
    refused = member.post(f"/committee/nominations/{barred.id}/act", data={"event": "vet", "track": "finalist",
                                                                           "csrf_token": token})
    assert refused.status_code == 422 and "入围奖" in refused.text
    assert state_of(engine, barred.id or 0) == State.VOTED


def test_invalid_act_shows_chinese_message(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    n = make(engine, campaign, spec, State.SUBMITTED)
    member, token = as_member("office")
    response = member.post(f"/committee/nominations/{n.id}/act", data={"event": "commend", "csrf_token": token})
    assert response.status_code == 409 and "不能执行此操作" in response.text
    stale = member.post(f"/committee/nominations/{n.id}/act", data={"event": "pass_screening", "csrf_token": token,
                                                                      "version": "99"})
    assert stale.status_code == 409 and "刷新" in stale.text


def test_paper_copies_are_recorded_and_audited(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    n = make(engine, campaign, spec, State.SUBMITTED)
    member, token = as_member("office")
    response = member.post(f"/committee/nominations/{n.id}/paper", data={"copies": "2", "csrf_token": token})
    assert response.status_code == 303
    with unit_of_work(engine, readonly=True) as session:
        row = session.get(Nomination, n.id)
        assert row is not None and row.paper_copies_received == 2 and row.paper_received_at is not None
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "paper_received")).one()
    audit = member.get("/committee/audit", params={"action": "paper_received"}).text
    assert f'href="/committee/nominations/{n.id}"' in audit and "登记纸质材料" in audit
    filtered = member.get("/committee/audit", params={"nomination": str(n.id), "event": "submit"}).text
    assert "提交申报" in filtered


def test_nomination_page_and_print_view(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    n = make(engine, campaign, spec, State.SUBMITTED, deeds="<b>事迹</b>", name="王师傅")
    member, _ = as_member("office")
    page = member.get(f"/committee/nominations/{n.id}").text
    assert "&lt;b&gt;事迹&lt;/b&gt;" in page and "<b>事迹</b>" not in page
    printed = member.get(f"/committee/nominations/{n.id}/print").text
    assert "王师傅" in printed and "组委会意见" in printed and "申请人" in printed


def test_admin_creates_users(as_member: Any, make_client: Any) -> None:
    member, token = as_member("office")
    response = member.post("/committee/users", data={"username": "li", "password": "long-enough-1",
                                                     "role": "reviewer", "csrf_token": token})
    assert response.status_code == 303
    assert "li" in member.get("/committee/users").text
    other = make_client()
    assert other.post("/api/session", json={"username": "li", "password": "long-enough-1"}).json()["role"] == "reviewer"


def test_calendar_and_dashboard_pages(as_member: Any) -> None:
    member, _ = as_member("office")
    assert "推荐申报" in member.get("/committee/calendar").text
    assert "各推荐单位名额使用" in member.get("/committee").text
    assert member.get("/committee/mail").status_code == 200


def test_committee_api_lists_and_reads(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    n = make(engine, campaign, spec, State.SUBMITTED)
    member, _ = as_member("vet", Role.VETTING_OFFICER)
    rows = member.get("/api/committee/nominations", params={"state": "submitted"}).json()
    assert [r["id"] for r in rows] == [n.id]
    detail = member.get(f"/api/committee/nominations/{n.id}").json()
    assert detail["history"][0]["event"] == "submit" and "phone" in detail["form"]
    assert member.get("/api/committee/nominations/999999").status_code == 404



def test_ids_out_of_range_are_refused_before_any_query(as_member: Any) -> None:
    member, token = as_member("office")
    huge = str(2**63)
    assert member.get(f"/committee/nominations/{huge}").status_code == 422
    assert member.post(f"/committee/objections/{huge}/rule", data={"csrf_token": token}).status_code == 422


def test_calendar_hand_controls_need_a_reason_and_are_audited(as_member: Any, engine: Any, campaign: Any,
                                                              clock: Any) -> None:
    from sqlmodel import select

    from audit.models import AuditEvent
    from config.campaign import StageName
    from tests.conftest import beijing

    admin, token = as_member("office", Role.OFFICE_ADMIN)
    page = admin.get("/committee/calendar")
    assert page.status_code == 200 and 'value="2021-05-31T18:00"' in page.text  # the deadline, Beijing time
    no_reason = admin.post("/committee/calendar/nomination/move", data={"csrf_token": token,
                                                                       "closes_at": "2021-06-02T18:00"})
    assert no_reason.status_code == 422 and "请填写操作理由" in no_reason.text
    bad = admin.post("/committee/calendar/nomination/move", data={"csrf_token": token, "closes_at": "6月2日",
                                                                  "reason": "延期"})
    assert bad.status_code == 422 and "北京时间" in bad.text
    moved = admin.post("/committee/calendar/nomination/move", data={
        "csrf_token": token, "opens_at": "2021-04-01T00:00", "closes_at": "2021-06-02T18:00",
        "reason": "因汛期延期两天"})
    assert moved.status_code == 303
    with unit_of_work(engine, readonly=True) as session:
        assert campaigns.get_stage(session, campaign.id, StageName.NOMINATION).closes_at == beijing(2021, 6, 2, 18, 0)
    closed = admin.post("/committee/calendar/nomination/close", data={"csrf_token": token, "reason": "名额已满"})
    assert closed.status_code == 303
    assert admin.post("/committee/calendar/publicity/pause", data={"csrf_token": token, "reason": "x"}).status_code \
        == 404
    with unit_of_work(engine, readonly=True) as session:
        nomination = campaigns.get_stage(session, campaign.id, StageName.NOMINATION)
        events = session.exec(select(AuditEvent).where(AuditEvent.actor.contains("office"))).all()  # type: ignore[attr-defined]
    assert nomination.closes_at == clock.now()  # closed by hand, now
    assert {e.reason for e in events} >= {"因汛期延期两天", "名额已满"}
