"""Issue 12, parts 3 and 6: security headers on every answer, pages with no inline script or style,
uploaded files that never leave as pages, photos re-encoded, messages never taken from the URL."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from sqlmodel import select

from config.settings import Settings
from core.clock import ManualClock
from core.errors import Conflict
from nominations.models import Attachment, Nomination
from nominations.states import State
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.web.conftest import login, pdf_bytes, png_bytes
from tests.web.test_api import form_json
from web import flash, headers
from web.app import create_app
from web.templating import TEMPLATES_DIR

POLYGLOT_TAIL = b"<html><body><script>alert(document.cookie)</script></body></html>"


@pytest.fixture
def engine(sqlite_engine: Any) -> Any:
    return sqlite_engine


def new_draft(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/nominations", json=form_json(name="安全测试"))
    assert response.status_code == 201, response.text
    return dict(response.json())


def upload(client: TestClient, token: str, kind: str, name: str, content: bytes) -> Any:
    return client.post(f"/api/nominations/{token}/attachments", data={"kind": kind},
                       files={"file": (name, content, "application/octet-stream")})


def jpeg_with_gps(width: int = 60, height: int = 80) -> bytes:
    """A phone photo: EXIF with the camera, a GPS position and "rotate 90°", and an HTML comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "PhoneX"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.GPSInfo] = {1: "N", 2: (29.0, 17.0, 0.0), 3: "E", 4: (106.0, 15.0, 0.0)}
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "JPEG", exif=exif, comment=b"<script>x</script>")
    return out.getvalue()


def assert_security_headers(response: Any, *, csp: str = headers.CONTENT_SECURITY_POLICY) -> None:
    h = response.headers
    assert csp in h.get_list("content-security-policy")
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert "camera=()" in h["permissions-policy"] and "geolocation=()" in h["permissions-policy"]
    assert "strict-transport-security" not in h  # served over http


# --- headers --------------------------------------------------------------------------------------


def test_headers_on_pages_api_static_and_errors(client: TestClient) -> None:
    for path, status in [("/", 200), ("/apply/self", 200), ("/api/campaign", 200), ("/healthz", 200),
                         ("/static/style.css", 200), ("/static/app.js", 200), ("/status/" + "A" * 32, 404),
                         ("/api/nominations/" + "A" * 32, 404), ("/no-such-page", 404), ("/committee", 303)]:
        response = client.get(path)
        assert response.status_code == status, path
        assert_security_headers(response)
    assert "text/html" in client.get("/status/" + "A" * 32).headers["content-type"]  # the Chinese error page


def test_headers_on_an_unexpected_500(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("not a domain error")

    app.add_api_route("/boom", boom)
    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert_security_headers(response)


def test_docs_have_their_own_policy(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert_security_headers(docs, csp=headers.DOCS_CONTENT_SECURITY_POLICY)
    assert headers.CONTENT_SECURITY_POLICY not in docs.headers.get_list("content-security-policy")
    assert_security_headers(client.get("/openapi.json"))  # the API description is plain JSON


def test_hsts_only_behind_https(engine: Any, campaign: Any, web_settings: Settings) -> None:
    settings = web_settings.model_copy(update={"public_base_url": "https://jingong.example.cn"})
    app = create_app(engine, settings, background=False, create_admin=False)
    response = TestClient(app, base_url="https://testserver").get("/healthz")
    assert response.headers["strict-transport-security"] == headers.HSTS
    assert response.headers["x-frame-options"] == "DENY"


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "a style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES_DIR).as_posix()
                                             for p in TEMPLATES_DIR.rglob("*.html")))
def test_no_inline_script_or_style_in_templates(template: str) -> None:
    text = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    found = [what for pattern, what in INLINE if pattern.search(text)]
    assert not found, f"{template} has {', '.join(found)}: move it to web/static/ (the CSP blocks it)"


# --- uploaded files -------------------------------------------------------------------------------


def test_evidence_is_always_a_download(client: TestClient) -> None:
    token = new_draft(client)["token"]
    for name, content in [("证书.pdf", pdf_bytes()), ("award.png", png_bytes() + POLYGLOT_TAIL)]:
        stored = upload(client, token, "award", name, content)
        assert stored.status_code == 201, stored.text
        response = client.get(f"/api/nominations/{token}/attachments/{stored.json()['id']}")
        assert response.status_code == 200 and response.content == content  # evidence is kept as it came
        assert response.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in ";".join(response.headers.get_list("content-security-policy"))
        assert_security_headers(response)


def test_photo_with_gps_is_served_re_encoded_without_exif(client: TestClient, engine: Any) -> None:
    sent = jpeg_with_gps()
    token = new_draft(client)["token"]
    stored = upload(client, token, "photo", "phone.jpg", sent)
    assert stored.status_code == 201, stored.text
    response = client.get(f"/api/nominations/{token}/attachments/{stored.json()['id']}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"].startswith("attachment;")
    served = response.content
    assert served != sent and b"PhoneX" not in served and b"<script" not in served
    image = Image.open(io.BytesIO(served))
    assert image.format == "JPEG" and image.size == (80, 60)  # turned upright, then the EXIF dropped
    assert not image.getexif() and "exif" not in image.info and "comment" not in image.info
    with unit_of_work(engine, readonly=True) as session:
        row = session.exec(select(Attachment)).one()
    assert row.size == len(served) and row.content_type == "image/jpeg"


def test_polyglot_photo_leaves_only_as_pixels(client: TestClient, engine: Any, campaign: Any,
                                              clock: ManualClock) -> None:
    from tests.factories import advance

    sent = png_bytes(4, 4) + POLYGLOT_TAIL  # a PNG to an image viewer, HTML to a browser that sniffs
    draft = new_draft(client)
    stored = upload(client, draft["token"], "photo", "p.png", sent)
    assert stored.status_code == 201, stored.text
    with unit_of_work(engine) as session:
        advance(session, session.get(Nomination, draft["id"]), State.SHORTLISTED)  # type: ignore[arg-type]
    clock.set(beijing(2021, 7, 2, 9, 0))  # voting: the photo is public
    public = client.get(f"/public/photos/{draft['id']}")
    assert public.status_code == 200 and public.headers["content-type"] == "image/png"
    assert public.headers["content-disposition"].startswith("inline;")
    assert b"<script" not in public.content and b"<html" not in public.content and public.content != sent
    assert Image.open(io.BytesIO(public.content)).size == (4, 4)
    assert_security_headers(public)


def test_an_undecodable_photo_is_refused_and_not_kept(client: TestClient, web_settings: Settings) -> None:
    token = new_draft(client)["token"]
    broken = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + POLYGLOT_TAIL  # a JPEG's first bytes, then a page
    response = upload(client, token, "photo", "me.jpg", broken)
    assert response.status_code == 415 and "无法识别" in response.json()["detail_zh"]
    assert not [p for p in Path(web_settings.uploads_dir).rglob("*") if p.is_file()]


# --- messages travel in the session ---------------------------------------------------------------


def test_a_crafted_message_in_the_link_shows_nothing(client: TestClient, make_user: Any) -> None:
    crafted = "组委会通知：请向账户6222转账报名费"
    token = new_draft(client)["token"]
    for path in ["/", f"/status/{token}", "/vote", "/notice", "/candidates"]:
        for param in ("msg", "refused", "done", "notice", "error"):
            page = client.get(path, params={param: crafted})
            assert page.status_code == 200 and crafted not in page.text, (path, param)
    assert "申报已提交" not in client.get(f"/status/{token}", params={"done": "submitted"}).text
    make_user("office")
    login(client, "office")
    for path in ["/committee", "/committee/calendar", "/committee/votes", "/committee/users"]:
        assert crafted not in client.get(path, params={"msg": crafted}).text, path


def test_a_flash_shows_once_after_the_redirect(client: TestClient, make_user: Any) -> None:
    make_user("office")
    csrf = login(client, "office")
    created = client.post("/committee/users", data={"csrf_token": csrf, "username": "reviewer1",
                                                    "display_name": "评审一", "role": "reviewer",
                                                    "password": "another-horse-42"})
    assert created.status_code == 303 and created.headers["location"] == "/committee/users"
    first = client.get("/committee/users").text
    assert 'role="status">已创建用户 reviewer1</p>' in first
    assert "已创建用户" not in client.get("/committee/users").text  # once


def test_a_message_of_an_act_that_failed_later_is_never_shown(app: FastAPI, client: TestClient) -> None:
    def act(request: Request) -> None:
        flash.add(request, "已创建用户 ghost")
        raise Conflict("the commit lost a race", message_zh="操作未完成，请重试")  # what a failed commit looks like

    app.add_api_route("/committee/act-that-fails", act, methods=["POST"])
    failed = client.post("/committee/act-that-fails")
    assert failed.status_code == 409 and "操作未完成" in failed.text and "已创建用户" not in failed.text
    assert "已创建用户" not in client.get("/").text


def test_a_refusal_travels_to_the_status_page_as_an_error(client: TestClient) -> None:
    response = client.post("/apply/self", data={"name": "赵师傅", "action": "submit"})
    assert response.status_code == 303 and "?" not in response.headers["location"]
    page = client.get(response.headers["location"]).text
    assert '<p class="error" role="alert">' in page and "请填写“联系电话”" in page
    assert '<p class="error" role="alert">' not in client.get(response.headers["location"]).text  # once
