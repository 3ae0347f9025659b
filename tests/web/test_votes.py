"""Voting over HTTP: verify by code, vote, the refusals (409 the same day, 401 unverified, 422
outside the window, 429 with Retry-After), the committee's tally and invalidation, and the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from accounts.models import Role
from campaigns.models import Campaign
from config.settings import Settings
from core.clock import ManualClock
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.voting.conftest import candidates, code_from_outbox, fresh_limits  # noqa: F401 - fixtures
from voting import limits, tally
from voting.group import GroupWriter
from voting.lane import APPLICATION_NAME, VoteLane
from web.app import create_app


def verify_over_http(client: TestClient, engine: Engine, address: str) -> str:
    sent = client.post("/api/votes/code", json={"kind": "email", "address": address})
    assert sent.status_code == 202, sent.text
    assert sent.json()["sent_to"].endswith("@example.cn")
    done = client.post("/api/votes/verify", json={"kind": "email", "address": address,
                                                  "code": code_from_outbox(engine, address)})
    assert done.status_code == 200, done.text
    assert "jingong_voter" in done.headers["set-cookie"] and "HttpOnly" in done.headers["set-cookie"]
    return str(done.json()["token"])


def test_vote_flow_and_refusals(client: TestClient, engine: Engine, candidates: list[int],  # noqa: F811
                                clock: ManualClock) -> None:
    token = verify_over_http(client, engine, "api@example.cn")
    bearer = {"Authorization": f"Bearer {token}"}
    first = client.post("/api/votes", json={"nomination_id": candidates[0]}, headers=bearer)
    assert first.status_code == 201, first.text
    assert first.json()["day"] == "2021-07-02" and first.json()["votes"] is None  # counts not public in 2021
    again = client.post("/api/votes", json={"nomination_id": candidates[0]}, headers=bearer)
    assert again.status_code == 409
    assert "已为该候选人投过一票" in again.json()["detail_zh"]
    # the cookie set at verification works as well as the header
    assert client.post("/api/votes", json={"nomination_id": candidates[1]}).status_code == 201
    anonymous = TestClient(client.app).post("/api/votes", json={"nomination_id": candidates[2]})
    assert anonymous.status_code == 401 and anonymous.json()["detail_zh"] == "请先验证邮箱或手机号"
    wrong = client.post("/api/votes/verify", json={"kind": "email", "address": "api@example.cn", "code": "12"})
    assert wrong.status_code == 422 and "验证码" in wrong.json()["detail_zh"]
    assert client.post("/api/votes", json={"nomination_id": "x"}).status_code == 422
    clock.set(beijing(2021, 7, 11, 0, 0))
    late = client.post("/api/votes", json={"nomination_id": candidates[2]}, headers=bearer)
    assert late.status_code == 422 and late.json()["detail_zh"] == "投票已于北京时间2021年7月11日 00:00截止"


def test_the_service_votes_through_its_lane(client: TestClient, engine: Engine,
                                           candidates: list[int]) -> None:  # noqa: F811
    with client:  # the app's lifespan: what `jingong serve` runs
        lane = client.app.state.vote_lane  # type: ignore[attr-defined]
        assert isinstance(lane, VoteLane if engine.dialect.name == "postgresql" else GroupWriter)
        bearer = {"Authorization": f"Bearer {verify_over_http(client, engine, 'lane@example.cn')}"}
        first = client.post("/api/votes", json={"nomination_id": candidates[0]}, headers=bearer)
        assert first.status_code == 201, first.text
        again = client.post("/api/votes", json={"nomination_id": candidates[0]}, headers=bearer)
        assert again.status_code == 409 and "已为该候选人投过一票" in again.json()["detail_zh"]
        assert lane.batches_written == 2  # both written by the lane (the refusal in a batch of its own)
        if engine.dialect.name == "postgresql":  # the statement ran on one of the lane's own connections
            with engine.connect() as conn:
                last = conn.execute(text("SELECT query FROM pg_stat_activity WHERE application_name = :name"),
                                    {"name": APPLICATION_NAME}).scalars().all()
            assert any("INSERT INTO vote " in q for q in last), last
    assert client.app.state.vote_lane is None  # type: ignore[attr-defined]
    with unit_of_work(engine, readonly=True) as session:
        assert tally.recount(session, campaign_id(engine)) == {candidates[0]: 1}


def campaign_id(engine: Engine) -> int:
    from campaigns import service as campaigns

    with unit_of_work(engine, readonly=True) as session:
        return campaigns.get_campaign(session).id or 0


def test_rate_limited_client_gets_429_with_retry_after(engine: Engine, campaign: Campaign,
                                                       candidates: list[int],  # noqa: F811
                                                       web_settings: Settings) -> None:
    settings = web_settings.model_copy(update={"vote_rate_per_voter_minute": 2})
    client = TestClient(create_app(engine, settings, background=False, create_admin=False))
    token = verify_over_http(client, engine, "fast@example.cn")
    bearer = {"Authorization": f"Bearer {token}"}
    for nomination_id in candidates[:2]:
        assert client.post("/api/votes", json={"nomination_id": nomination_id}, headers=bearer).status_code == 201
    limited = client.post("/api/votes", json={"nomination_id": candidates[2]}, headers=bearer)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert "过于频繁" in limited.json()["detail_zh"]


def test_committee_tally_and_invalidation(client: TestClient, engine: Engine, candidates: list[int],  # noqa: F811
                                          as_member: Callable[..., Any]) -> None:
    token = verify_over_http(client, engine, "t@example.cn")
    vote = client.post("/api/votes", json={"nomination_id": candidates[0]},
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert TestClient(client.app).get("/api/votes/tally").status_code == 401
    reviewer, reviewer_csrf = as_member("rev", Role.REVIEWER)
    tally = reviewer.get("/api/votes/tally").json()
    assert tally["tally"][0] == {"nomination_id": candidates[0], "name": "候选人0", "votes": 1}
    assert tally["counter_mismatches"] == [] and tally["frozen"] is False
    refused = reviewer.post(f"/api/votes/{vote['vote_id']}/invalidate", json={"reason": "x"},
                            headers={"x-csrf-token": reviewer_csrf})
    assert refused.status_code == 403
    admin, csrf = as_member("office", Role.OFFICE_ADMIN)
    assert admin.post(f"/api/votes/{vote['vote_id']}/invalidate", json={"reason": "刷票"}).status_code == 403  # no CSRF
    done = admin.post(f"/api/votes/{vote['vote_id']}/invalidate", json={"reason": "刷票"},
                      headers={"x-csrf-token": csrf})
    assert done.status_code == 200 and done.json()["valid"] is False
    assert admin.get("/api/votes/tally").json()["tally"][0]["votes"] == 0
    page = admin.get("/committee/votes")
    assert page.status_code == 200 and "已作废：刷票" in page.text and "计数器与投票记录一致" in page.text


def test_the_voting_page_without_javascript(client: TestClient, engine: Engine, campaign: Campaign,
                                            candidates: list[int], clock: ManualClock) -> None:  # noqa: F811
    page = client.get("/vote")
    assert page.status_code == 200 and "获取验证码" in page.text and "候选人0" in page.text
    assert "未入围" not in page.text  # only the shortlist
    sent = client.post("/vote/code", data={"kind": "email", "address": "page@example.cn"})
    assert sent.status_code == 200 and "验证码已发送至 p***@example.cn" in sent.text
    bad = client.post("/vote/verify", data={"kind": "email", "address": "page@example.cn", "code": "000000x"})
    assert bad.status_code == 422 and "验证码错误" in bad.text
    ok = client.post("/vote/verify", data={"kind": "email", "address": "page@example.cn",
                                           "code": code_from_outbox(engine, "page@example.cn")})
    assert ok.status_code == 303
    voted = client.post(f"/vote/{candidates[0]}")
    assert voted.status_code == 303 and voted.headers["location"] == f"/vote?voted={candidates[0]}#c{candidates[0]}"
    assert "投票成功" in client.get(voted.headers["location"]).text
    twice = client.post(f"/vote/{candidates[0]}")
    assert twice.status_code == 409 and "您今天（2021-07-02）已为该候选人投过一票" in twice.text
    clock.set(beijing(2021, 7, 20, 0, 0))
    assert "投票已截止" in client.get("/vote").text
    with unit_of_work(engine, readonly=True) as session:
        assert tally.recount(session, campaign.id or 0) == {candidates[0]: 1}


def test_the_vote_path_answers_as_the_route_does(engine: Engine, campaign: Campaign,
                                                 candidates: list[int],  # noqa: F811
                                                 web_settings: Settings) -> None:
    """With the app's lifespan a well-formed vote is answered by web/vote_path.py in front of the
    stack; without it, by the FastAPI route. Both answer every case alike (refusals, malformed
    bodies, the rate limit with Retry-After)."""
    settings = web_settings.model_copy(update={"vote_rate_per_voter_minute": 4})

    def run(client: TestClient, address: str) -> list[tuple[int, Any, str | None]]:
        bearer = {"Authorization": f"Bearer {verify_over_http(client, engine, address)}"}
        plain = {**bearer, "Content-Type": "text/plain"}
        sent = [
            client.post("/api/votes", json={"nomination_id": candidates[0]}, headers={"Authorization": "Bearer x"}),
            TestClient(client.app).post("/api/votes", json={"nomination_id": candidates[0]}),
            client.post("/api/votes", json={"nomination_id": candidates[0]}, headers=bearer),
            client.post("/api/votes", json={"nomination_id": candidates[0]}, headers=bearer),
            client.post("/api/votes", json={"nomination_id": candidates[3]}, headers=bearer),  # not on the ballot
            client.post("/api/votes", json={"nomination_id": "x"}, headers=bearer),
            client.post("/api/votes", json={"nomination_id": 0}, headers=bearer),
            client.post("/api/votes", content=b'{"nomination_id": 1', headers={**bearer, **plain}),
            client.post("/api/votes", json={"nomination_id": candidates[1]}, headers=bearer),
            client.post("/api/votes", json={"nomination_id": candidates[2]}, headers=bearer),  # over the limit
        ]
        answers = []
        for response in sent:
            body = response.json()
            if response.status_code == 201:
                assert len(body["receipt"]) == 14  # a receipt of its own: compared by shape, not value
                body = {k: v for k, v in body.items() if k not in ("vote_id", "receipt")}
            answers.append((response.status_code, body, response.headers.get("retry-after")))
        return answers

    routed = run(TestClient(create_app(engine, settings, background=False, create_admin=False)), "route@example.cn")
    limits.reset_limits()
    app = create_app(engine, settings, background=False, create_admin=False)
    with TestClient(app) as client:
        fronted = run(client, "front@example.cn")
        lane = client.app.state.vote_lane  # type: ignore[attr-defined]
        assert lane.batches_written >= 3  # the well-formed votes (two accepted, one repeat) went through it
    assert [status for status, _, _ in fronted] == [401, 401, 201, 409, 422, 422, 422, 422, 201, 429]
    assert [(s, b) for s, b, _ in fronted] == [(s, b) for s, b, _ in routed]
    assert fronted[-1][2] is not None and routed[-1][2] is not None  # Retry-After (its seconds may differ)
