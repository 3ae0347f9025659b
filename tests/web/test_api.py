"""The JSON API: campaign, health, the applicant's nomination by token, uploads, errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from core.clock import ManualClock
from nominations.models import Attachment, NominationKind
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import complete_form
from tests.web.conftest import pdf_bytes, png_bytes, pptx_bytes


def form_json(kind: NominationKind = NominationKind.SELF, **overrides: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in complete_form(kind, **overrides).items()}


def new_draft(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/nominations", json=form_json(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def test_healthz_reports_app_and_database(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["scheduler"] == "disabled"


def test_campaign_lists_stages_with_beijing_offsets_and_the_open_one(client: TestClient) -> None:
    body = client.get("/api/campaign").json()
    assert body["open_stage"] == "nomination"
    nomination = next(s for s in body["stages"] if s["name"] == "nomination")
    assert nomination["closes_at"] == "2021-05-31T18:00:00+08:00"
    assert nomination["open_now"] is True
    assert all(s["opens_at"].endswith("+08:00") for s in body["stages"])
    assert body["shortlist"] == {"min": 20, "max": 25}
    assert body["counts"]["draft"] == 0


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/nominations/{token}/submit" in paths
    assert not any(p.startswith("/committee") for p in paths)  # pages are not part of the API


def test_draft_save_update_submit_and_history(client: TestClient) -> None:
    draft = new_draft(client, phone=None)
    assert draft["state"] == "draft" and len(draft["token"]) >= 30
    assert [p["field"] for p in draft["problems"]] == ["phone", "photo"]
    token = draft["token"]
    refused = client.post(f"/api/nominations/{token}/submit")
    assert refused.status_code == 422
    assert "phone" in refused.json()["detail"] and "联系电话" in refused.json()["detail_zh"]
    assert "照片" in refused.json()["detail_zh"]
    updated = client.patch(f"/api/nominations/{token}", json={"phone": "13912345678"})
    assert updated.status_code == 200 and [p["field"] for p in updated.json()["problems"]] == ["photo"]
    no_photo = client.post(f"/api/nominations/{token}/submit")
    assert no_photo.status_code == 422 and "photo" in no_photo.json()["detail"]
    client.post(f"/api/nominations/{token}/attachments", data={"kind": "photo"},
                files={"file": ("p.png", png_bytes(), "image/png")})
    submitted = client.post(f"/api/nominations/{token}/submit").json()
    assert submitted["state"] == "submitted"
    assert [(h["from_state"], h["to_state"]) for h in submitted["history"]] == [("draft", "submitted")]
    assert submitted["history"][0]["at"] == "2021-05-01T10:00:00+08:00"
    # a submitted form cannot be edited
    again = client.patch(f"/api/nominations/{token}", json={"phone": "13912345679"})
    assert again.status_code == 409


def test_missing_fields_are_all_listed(client: TestClient) -> None:
    draft = client.post("/api/nominations", json={"kind": "unit", "name": "张三"}).json()
    fields = {p["field"] for p in draft["problems"]}
    assert {"sex", "birth_date", "phone", "deeds", "unit_id", "unit_opinion"} <= fields
    refused = client.post(f"/api/nominations/{draft['token']}/submit").json()
    assert "请填写“联系电话”" in refused["detail_zh"] and "请填写“推荐单位”" in refused["detail_zh"]


@pytest.mark.parametrize("body, field", [
    ({"deeds": "事" * 501}, "deeds"),
    ({"technical_grade": "大师"}, "technical_grade"),
    ({"phone": "12345"}, "phone"),
    ({"unit_id": 999999}, "unit_id"),
])
def test_bad_values_are_refused_with_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/nominations", json=form_json() | body)
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_unknown_fields_and_control_characters_are_refused(client: TestClient) -> None:
    assert client.post("/api/nominations", json=form_json() | {"state": "commended"}).status_code == 422
    assert client.post("/api/nominations", json=form_json() | {"name": "a\x00b"}).status_code == 422


def test_submission_at_the_deadline_is_refused_with_beijing_time(client: TestClient, clock: ManualClock) -> None:
    token = new_draft(client)["token"]
    clock.set(beijing(2021, 5, 31, 18, 0, 0))
    response = client.post(f"/api/nominations/{token}/submit")
    assert response.status_code == 422
    body = response.json()
    assert "北京时间" in body["detail_zh"] and "18:00:00" in body["detail_zh"] and "31" in body["detail_zh"]
    assert "2021-05-31 18:00:00" in body["detail"]
    assert client.get(f"/api/nominations/{token}").json()["state"] == "draft"
    assert client.patch(f"/api/nominations/{token}", json={"phone": "13912345678"}).status_code == 422
    assert client.post("/api/nominations", json=form_json()).status_code == 422


def test_submission_just_before_the_deadline_is_accepted(client: TestClient, clock: ManualClock) -> None:
    token = new_draft(client)["token"]
    client.post(f"/api/nominations/{token}/attachments", data={"kind": "photo"},
                files={"file": ("p.png", png_bytes(), "image/png")})
    clock.set(beijing(2021, 5, 31, 17, 59, 59, 999000))
    assert client.post(f"/api/nominations/{token}/submit").json()["state"] == "submitted"


def test_a_token_reads_only_its_own_nomination(client: TestClient) -> None:
    mine, theirs = new_draft(client), new_draft(client)
    upload = client.post(f"/api/nominations/{theirs['token']}/attachments", data={"kind": "award"},
                         files={"file": ("me.png", png_bytes(), "image/png")})  # evidence: kept as uploaded
    assert upload.status_code == 201
    attachment_id = upload.json()["id"]
    assert client.get(f"/api/nominations/{mine['token']}/attachments/{attachment_id}").status_code == 404
    assert client.get(f"/api/nominations/{theirs['token']}/attachments/{attachment_id}").content == png_bytes()
    assert client.get("/api/nominations/" + "A" * 32).status_code == 404
    assert client.get(f"/api/nominations/{mine['token']}").json()["attachments"] == []


def _stored(settings_dir: Path) -> list[Path]:
    return [p for p in settings_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize("kind, name, content, mime", [
    ("photo", "p.png", png_bytes(), "image/png"),
    ("certificate", "c.pdf", pdf_bytes(), "application/pdf"),
    ("achievement", "slides.pptx", pptx_bytes(), "application/octet-stream"),
])
def test_upload_accepts_by_content(client: TestClient, engine: Any, kind: str, name: str, content: bytes,
                                   mime: str) -> None:
    token = new_draft(client)["token"]
    response = client.post(f"/api/nominations/{token}/attachments", data={"kind": kind},
                           files={"file": (name, content, mime)})
    assert response.status_code == 201, response.text
    body = response.json()
    # a photo is re-encoded (tests/web/test_content_safety.py); other evidence is kept as it came
    assert body["kind"] == kind and (kind == "photo" or body["size"] == len(content))
    with unit_of_work(engine, readonly=True) as session:
        row = session.exec(select(Attachment)).one()
    assert row.content_type == body["content_type"]


def test_upload_of_wrong_type_is_415_and_nothing_is_kept(client: TestClient, engine: Any, web_settings: Any) -> None:
    token = new_draft(client)["token"]
    fake = b"MZ\x90\x00" + b"\x00" * 200  # a Windows program named like a picture
    response = client.post(f"/api/nominations/{token}/attachments", data={"kind": "certificate"},
                           files={"file": ("cert.jpg", fake, "image/jpeg")})
    assert response.status_code == 415
    assert "类型" in response.json()["detail_zh"]
    pdf_as_photo = client.post(f"/api/nominations/{token}/attachments", data={"kind": "photo"},
                               files={"file": ("photo.png", pdf_bytes(), "image/png")})
    assert pdf_as_photo.status_code == 415
    assert _stored(web_settings.uploads_dir) == []
    with unit_of_work(engine, readonly=True) as session:
        assert session.exec(select(Attachment)).all() == []


def test_oversized_upload_is_413_and_nothing_is_half_stored(client: TestClient, engine: Any,
                                                            web_settings: Any) -> None:
    token = new_draft(client)["token"]
    big = png_bytes(padding=web_settings.upload_max_bytes + 10)
    response = client.post(f"/api/nominations/{token}/attachments", data={"kind": "achievement"},
                           files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413
    assert "大小" in response.json()["detail_zh"]
    photo = client.post(f"/api/nominations/{token}/attachments", data={"kind": "photo"},
                        files={"file": ("p.png", png_bytes(padding=web_settings.photo_max_bytes), "image/png")})
    assert photo.status_code == 413
    assert _stored(web_settings.uploads_dir) == []
    with unit_of_work(engine, readonly=True) as session:
        assert session.exec(select(Attachment)).all() == []


def test_upload_streams_past_the_limit_without_content_length(client: TestClient, web_settings: Any) -> None:
    """A chunked body with no length header is cut off at the limit, not read to the end."""
    token = new_draft(client)["token"]
    boundary = "xyzBOUNDARY"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nother\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    sent = {"bytes": 0}

    def body() -> Any:
        yield head
        chunk = b"\x00" * 65536
        for _ in range(40):  # 2.5 MB offered, far past the 300 KB limit
            sent["bytes"] += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(f"/api/nominations/{token}/attachments", content=body(),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413
    assert _stored(web_settings.uploads_dir) == []


def test_upload_after_the_deadline_is_refused(client: TestClient, clock: ManualClock) -> None:
    token = new_draft(client)["token"]
    clock.set(beijing(2021, 6, 1, 9, 0))
    response = client.post(f"/api/nominations/{token}/attachments", data={"kind": "photo"},
                           files={"file": ("p.png", png_bytes(), "image/png")})
    assert response.status_code == 422 and "截止" in response.json()["detail_zh"]


def test_withdraw(client: TestClient) -> None:
    token = new_draft(client)["token"]
    body = client.post(f"/api/nominations/{token}/withdraw", json={"reason": "个人原因"}).json()
    assert body["state"] == "withdrawn" and body["history"][-1]["reason"] == "个人原因"


def test_anonymous_cannot_reach_committee_api(client: TestClient) -> None:
    assert client.get("/api/committee/nominations").status_code == 401
    assert client.post("/api/committee/bulk", json={"ids": [1], "event": "reject"}).status_code in {401, 403}
    assert client.get("/api/committee/users").status_code == 401


def test_wrong_password_is_refused(client: TestClient, make_user: Any) -> None:
    make_user("alice")
    response = client.post("/api/session", json={"username": "alice", "password": "wrong-password"})
    assert response.status_code == 422 and response.json()["detail_zh"] == "用户名或密码错误"
    assert client.get("/api/committee/nominations").status_code == 401
