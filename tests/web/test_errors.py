"""No input answers 5xx: a reference to a row that does not exist is refused by the service (422),
an integrity error that still escapes is a 409, anything else unexpected a logged 500, always in
the documented shape (JSON ``{"detail", "detail_zh"}`` under /api, the Chinese page elsewhere)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from campaigns import service as campaigns
from campaigns.models import Campaign, NominatingUnit
from config.campaign import CampaignSpec
from nominations import service as nominations
from nominations.models import Nomination, NominationKind
from stages import service as stages
from storage.db import unit_of_work
from tests.web.test_api import new_draft


def _unit_ids(engine: Engine, campaign_id: int) -> list[int]:
    with unit_of_work(engine) as session:
        units = session.exec(select(NominatingUnit).where(NominatingUnit.campaign_id == campaign_id))
        return [u.id or 0 for u in units]


def _unit_draft(client: TestClient, engine: Engine, campaign: Campaign) -> tuple[str, int]:
    """A unit nomination's draft with a real unit: (token, unit id)."""
    unit_id = _unit_ids(engine, campaign.id or 0)[0]
    return new_draft(client, kind=NominationKind.UNIT, unit_id=unit_id)["token"], unit_id


def _stored_unit(engine: Engine, token: str) -> int | None:
    with unit_of_work(engine) as session:
        return nominations.get_by_token(session, token).unit_id


@pytest.mark.parametrize("unit_id", [999_999, 2**31 - 1])
def test_patch_with_an_unknown_unit_is_a_422_naming_the_field(client: TestClient, engine: Engine,
                                                              campaign: Campaign, unit_id: int) -> None:
    token, unit = _unit_draft(client, engine, campaign)
    response = client.patch(f"/api/nominations/{token}", json={"unit_id": unit_id})
    assert response.status_code == 422, response.text
    body = response.json()
    assert "unit_id" in body["detail"] and body["detail_zh"] == "推荐单位不存在，请从列表中选择"
    assert _stored_unit(engine, token) == unit


def test_create_with_an_unknown_unit_is_a_422(client: TestClient) -> None:
    response = client.post("/api/nominations", json={"kind": "unit", "name": "张三", "unit_id": 999_999})
    assert response.status_code == 422
    assert response.json()["detail_zh"] == "推荐单位不存在，请从列表中选择"


def test_a_unit_of_another_campaign_is_refused(engine: Engine, campaign: Campaign, spec: CampaignSpec,
                                                web_settings: Any) -> None:
    from web.app import create_app

    old_units = _unit_ids(engine, campaign.id or 0)
    with unit_of_work(engine) as session:  # a newer campaign: the one the app now serves
        newer = stages.load_campaign(session, spec.model_copy(update={"slug": "jingong-2022"}))
    new_units = _unit_ids(engine, newer.id or 0)
    client = TestClient(create_app(engine, web_settings, background=False, create_admin=False))
    draft = new_draft(client, kind=NominationKind.UNIT, unit_id=new_units[0])
    assert _stored_unit(engine, draft["token"]) == new_units[0]
    for path, method in ((f"/api/nominations/{draft['token']}", "PATCH"), ("/api/nominations", "POST")):
        body = {"unit_id": old_units[0]} if method == "PATCH" else {"kind": "unit", "unit_id": old_units[0]}
        response = client.request(method, path, json=body)
        assert response.status_code == 422, response.text
        assert "not a nominating unit of this campaign" in response.json()["detail"]


def test_the_status_form_with_an_unknown_unit_shows_the_chinese_page(client: TestClient, engine: Engine,
                                                                    campaign: Campaign) -> None:
    token, unit = _unit_draft(client, engine, campaign)
    response = client.post(f"/status/{token}", data={"unit_id": "999999", "name": "李四"})
    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    assert "推荐单位不存在" in response.text
    assert _stored_unit(engine, token) == unit


def test_an_integrity_error_that_escapes_the_service_is_a_409(client: TestClient, engine: Engine, campaign: Campaign,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With the service's check switched off, the database's foreign key refuses the change: the
    answer is still a 409 in the documented shape, and nothing is stored."""
    token, unit = _unit_draft(client, engine, campaign)
    monkeypatch.setattr(nominations, "check_references", lambda *args, **kwargs: [])
    response = client.patch(f"/api/nominations/{token}", json={"unit_id": 999_999})
    assert response.status_code == 409, response.text
    body = response.json()
    assert set(body) == {"detail", "detail_zh"} and "conflicts" in body["detail"]
    assert "INSERT" not in body["detail"] and "UPDATE" not in body["detail"]  # no SQL to the caller
    page = client.post(f"/status/{token}", data={"unit_id": "999999"})
    assert page.status_code == 409 and "提交的内容与已有数据冲突" in page.text
    assert _stored_unit(engine, token) == unit


def _failing_app(app: FastAPI) -> FastAPI:
    def boom() -> None:
        raise RuntimeError("something nobody foresaw")

    def clash() -> None:
        raise IntegrityError("INSERT INTO x", {}, Exception("duplicate key value"))

    for prefix in ("/api/test", "/test"):
        app.add_api_route(f"{prefix}/boom", boom)
        app.add_api_route(f"{prefix}/clash", clash)
    return app


def test_an_unexpected_error_under_api_is_a_logged_json_500(app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(_failing_app(app))  # raise_server_exceptions stays on: nothing may escape
    with caplog.at_level(logging.ERROR, logger="jingong.web"):
        response = client.get("/api/test/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; it has been logged",
                               "detail_zh": "服务器内部错误，已记录，请稍后重试"}
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "something nobody foresaw" in str(logged[0].exc_info[1])  # type: ignore[index]
    page = client.get("/test/boom")
    assert page.status_code == 500 and "text/html" in page.headers["content-type"]
    assert "服务器内部错误" in page.text and "Traceback" not in page.text


def test_a_raised_integrity_error_is_a_409_in_both_shapes(app: FastAPI) -> None:
    client = TestClient(_failing_app(app))
    response = client.get("/api/test/clash")
    assert response.status_code == 409 and set(response.json()) == {"detail", "detail_zh"}
    page = client.get("/test/clash")
    assert page.status_code == 409 and "提交的内容与已有数据冲突" in page.text


def test_the_service_refuses_an_unknown_unit_before_the_database(engine: Engine, campaign: Campaign,
                                                                 spec: CampaignSpec) -> None:
    with unit_of_work(engine) as session:
        problems = nominations.check_references(session, campaign.id or 0, {"unit_id": 999_999})
        assert [p.field for p in problems] == ["unit_id"]
        assert nominations.check_references(session, campaign.id or 0, {"unit_id": None}) == []
        assert len(nominations.check_references(session, campaign.id or 0, {"unit_id": 2**63})) == 1
        assert session.exec(select(Nomination)).first() is None


def test_a_retired_unit_is_refused_for_new_choices_and_kept_by_its_drafts(client: TestClient, engine: Engine,
                                                                          campaign: Campaign) -> None:
    token, unit = _unit_draft(client, engine, campaign)
    with unit_of_work(engine) as session:
        retired = session.get(NominatingUnit, unit)
        assert retired is not None
        retired.retired = True  # gone from this year's campaign file
        other = next(u.id for u in campaigns.list_units(session, campaign.id or 0) if u.id != unit and not u.retired)
        name = retired.name
    kept = client.patch(f"/api/nominations/{token}", json={"unit_id": unit, "name": "李四"})
    assert kept.status_code == 200, kept.text  # the draft that names it keeps it
    fresh = client.post("/api/nominations", json={"kind": "unit", "name": "张三", "unit_id": unit})
    assert fresh.status_code == 422 and fresh.json()["detail_zh"] == f"“{name}”已不在本届推荐单位之列，请从列表中选择"
    assert client.patch(f"/api/nominations/{token}", json={"unit_id": other}).status_code == 200
    back = client.patch(f"/api/nominations/{token}", json={"unit_id": unit})  # once left, not chosen again
    assert back.status_code == 422 and "unit_id" in back.json()["detail"]
    assert _stored_unit(engine, token) == other
