"""UPLOADS_DIR: uploads live in one folder that every instance sees (the embedded default keeps
them under the data folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from config.settings import Settings
from tests.web.conftest import pdf_bytes
from tests.web.test_api import new_draft
from web.app import create_app


def test_unset_uploads_stay_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings.model_validate({"JINGONG_DATA_DIR": str(tmp_path / "data")})
    assert settings.uploads_dir == tmp_path / "data" / "uploads"


def test_an_upload_through_one_instance_is_read_through_another(engine: Engine, campaign: Any,
                                                                web_settings: Settings, tmp_path: Path) -> None:
    shared = tmp_path / "shared-uploads"

    def instance(name: str) -> TestClient:
        settings = web_settings.model_copy(update={"data_dir": tmp_path / name, "uploads_dir_setting": shared})
        return TestClient(create_app(engine, settings, background=False, create_admin=False))

    first, second = instance("host1"), instance("host2")
    token = new_draft(first)["token"]
    content = pdf_bytes()
    stored = first.post(f"/api/nominations/{token}/attachments", data={"kind": "certificate"},
                        files={"file": ("cert.pdf", content, "application/pdf")})
    assert stored.status_code == 201, stored.text
    fetched = second.get(f"/api/nominations/{token}/attachments/{stored.json()['id']}")
    assert fetched.status_code == 200 and fetched.content == content
    assert [p for p in shared.rglob("*") if p.is_file() and ".tmp" not in p.parts]
    assert not (tmp_path / "host1" / "uploads").exists()  # nothing under the instance's own folder
