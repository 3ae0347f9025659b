"""``jingong serve`` for real: uvicorn on a free port, first start, health, the API."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from accounts import service as accounts
from accounts.models import Role
from campaigns.models import Campaign
from config.settings import Settings
from core.errors import ValidationFailed
from storage.db import unit_of_work
from tests.web.server import Server, running_server
from web.app import ensure_admin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve")) as running:
        yield running


def test_first_start_creates_admin_and_secret(server: Server) -> None:
    key = server.data_dir / "secret_key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert server.output().count("with password:") == 1
    with httpx.Client(base_url=server.url) as client:
        response = client.post("/api/session", json={"username": "admin", "password": server.admin_password})
        assert response.status_code == 200 and response.json()["role"] == "office_admin"
        assert client.get("/api/committee/users").status_code == 200


def test_health_and_campaign_in_2021(server: Server) -> None:
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["now"].startswith("2021-05-20")
    campaign = httpx.get(f"{server.url}/api/campaign").json()
    assert campaign["open_stage"] == "nomination" and campaign["now"].endswith("+08:00")
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_restart_keeps_admin_and_key(tmp_path: Path) -> None:
    with running_server(tmp_path) as first:
        key = (first.data_dir / "secret_key").read_text()
        password = first.admin_password
    with running_server(tmp_path, first_start=False) as second:
        assert "with password:" not in second.output()
        response = httpx.post(f"{second.url}/api/session", json={"username": "admin", "password": password})
        assert response.status_code == 200
    assert (tmp_path / "data" / "secret_key").read_text() == key


def test_users_commands(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.web.server import ROOT

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"JINGONG_DATA_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "cli.main"]
    subprocess.run([*cli, "init"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    added = subprocess.run([*cli, "users", "add", "wang", "--role", "reviewer", "--password", "long-password-1",
                            "--name", "王审核"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    short = subprocess.run([*cli, "users", "add", "li", "--role", "reviewer", "--password", "short"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "at least 8" in short.stderr
    listed = subprocess.run([*cli, "users", "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "wang" in listed.stdout and "reviewer" in listed.stdout and "li " not in listed.stdout


def test_instances_starting_at_once_make_one_admin(engine: Engine, campaign: Campaign,
                                                  web_settings: Settings) -> None:
    """Scale-out: app instances starting together race to create the office admin (the password
    hash makes the gap between look and insert wide); each starts, and there is one admin."""
    starters = 4
    barrier = threading.Barrier(starters)
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            ensure_admin(engine, web_settings)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with unit_of_work(engine, readonly=True) as session:
        assert [u.username for u in accounts.list_users(session)] == ["admin"]


def test_a_name_clash_that_is_no_race_still_fails(engine: Engine, campaign: Campaign,
                                                  web_settings: Settings) -> None:
    with unit_of_work(engine) as session:  # "admin" taken by a reviewer: no office admin exists
        accounts.create_user(session, "admin", "correct-horse-42", Role.REVIEWER)
    with pytest.raises(ValidationFailed, match="username 'admin' is taken"):
        ensure_admin(engine, web_settings)
