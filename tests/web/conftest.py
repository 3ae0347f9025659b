"""Fixtures for the HTTP tests: the app on a test database, clients, committee members."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from accounts import service as accounts
from accounts.models import Role, User
from campaigns.models import Campaign
from config.settings import Settings
from storage.db import unit_of_work
from web.app import create_app

PASSWORD = "correct-horse-42"


def png_bytes(width: int = 2, height: int = 2, padding: int = 0) -> bytes:
    """A real PNG (optionally padded with a private chunk to reach a size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw))
    if padding:
        body += chunk(b"pADd", b"\x00" * padding)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def pptx_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("ppt/presentation.xml", "<p:presentation/>")
    return out.getvalue()


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "JINGONG_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "test-secret-key-" + "x" * 40,
        "UPLOAD_MAX_BYTES": 300_000,
        "PHOTO_MAX_BYTES": 100_000,
        "SCHEDULER_ENABLED": False,
        "PUBLIC_BASE_URL": "http://testserver",
    })


@pytest.fixture
def app(engine: Engine, campaign: Campaign, web_settings: Settings) -> FastAPI:
    return create_app(engine, web_settings, background=False, create_admin=False)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def make_client(app: FastAPI) -> Callable[[], TestClient]:
    return lambda: TestClient(app, follow_redirects=False)


@pytest.fixture
def make_user(engine: Engine) -> Callable[..., User]:
    def make(username: str, role: Role = Role.OFFICE_ADMIN, unit_id: int | None = None) -> User:
        with unit_of_work(engine) as session:
            return accounts.create_user(session, username, PASSWORD, role, unit_id=unit_id)

    return make


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the JSON API; returns the CSRF token for later changes."""
    response = client.post("/api/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


@pytest.fixture
def as_member(make_user: Callable[..., User], make_client: Callable[[], TestClient]) -> Callable[..., Any]:
    """A logged-in client for a new member: returns (client, csrf token)."""
    def make(username: str, role: Role = Role.OFFICE_ADMIN, unit_id: int | None = None) -> tuple[TestClient, str]:
        make_user(username, role, unit_id)
        c = make_client()
        return c, login(c, username)

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A database for a real server (tests/web/server.py): None for the embedded SQLite file, or
    a scratch PostgreSQL database made for the test and dropped after it."""
    from tests.conftest import PG_ADMIN_URL, _pg_available
    from tests.web.rush import scratch_postgres

    if request.param == "sqlite":
        yield None
        return
    problem = _pg_available()
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    with scratch_postgres(PG_ADMIN_URL) as url:
        yield url
