"""A full disk under the running service, for real (the data folder on a small tmpfs): writes
answer 503 with Retry-After, nothing is half-written, and the service recovers when space returns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import select

from config.campaign import CampaignSpec
from config.settings import Settings
from core.clock import ManualClock
from nominations.models import Attachment, Nomination
from stages import service as stages
from storage.db import make_engine, unit_of_work
from storage.migrate import create_all
from tests.mounts import fill, tmpfs
from tests.web.conftest import png_bytes
from tests.web.test_api import form_json
from web.app import create_app
from wiring.tables import metadata


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "mnt", size="4m") as mnt:
        yield mnt


@pytest.fixture
def small_engine(disk: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{disk / 'data' / 'jingong.db'}")
    create_all(engine, metadata)
    yield engine
    engine.dispose()


@pytest.fixture
def client(disk: Path, small_engine: Engine, spec: CampaignSpec, clock: ManualClock) -> TestClient:
    with unit_of_work(small_engine) as session:
        stages.load_campaign(session, spec)
    settings = Settings.model_validate({
        "JINGONG_DATA_DIR": str(disk / "data"), "SECRET_KEY": "test-secret-key-" + "x" * 40,
        "UPLOAD_MAX_BYTES": 600_000, "SCHEDULER_ENABLED": False, "PUBLIC_BASE_URL": "http://testserver",
    })
    return TestClient(create_app(small_engine, settings, background=False, create_admin=False))


def _count(engine: Engine, table: type[Nomination] | type[Attachment]) -> int:
    with unit_of_work(engine, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def _assert_503(response: object) -> None:
    assert getattr(response, "status_code", None) == 503
    assert response.headers["Retry-After"].isdigit()  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"detail", "detail_zh"} and "disk is full" in body["detail"] and "稍后重试" in body["detail_zh"]


def test_an_upload_on_a_full_disk_is_503_and_leaves_nothing(client: TestClient, disk: Path,
                                                            small_engine: Engine) -> None:
    token = client.post("/api/nominations", json=form_json()).json()["token"]
    photo = png_bytes(padding=400_000)
    filler = fill(disk)

    refused = client.post(f"/api/nominations/{token}/attachments", data={"kind": "achievement"},
                          files={"file": ("big.png", photo, "image/png")})

    _assert_503(refused)
    uploads = disk / "data" / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []
    assert _count(small_engine, Attachment) == 0
    filler.unlink()
    accepted = client.post(f"/api/nominations/{token}/attachments", data={"kind": "achievement"},
                           files={"file": ("big.png", photo, "image/png")})
    assert accepted.status_code == 201, accepted.text
    assert [p.stat().st_size for p in uploads.rglob("*") if p.is_file()] == [len(photo)]


def test_database_writes_on_a_full_disk_are_503_whole_and_recover(client: TestClient, disk: Path,
                                                                  small_engine: Engine) -> None:
    assert client.post("/api/nominations", json=form_json()).status_code == 201
    filler = fill(disk)
    answers = []
    for _ in range(300):  # the WAL may still hold room for a few; then the disk says no
        response = client.post("/api/nominations", json=form_json(deeds="事迹" * 240))
        answers.append(response.status_code)
        if response.status_code == 503:
            _assert_503(response)
            break
    assert answers[-1] == 503 and set(answers) <= {201, 503}, answers
    assert _count(small_engine, Nomination) == 1 + answers.count(201)  # the refused one left no row
    assert client.get("/api/campaign").status_code == 200  # reading still works
    filler.unlink()
    assert client.post("/api/nominations", json=form_json()).status_code == 201
    assert _count(small_engine, Nomination) == 2 + answers.count(201)
