"""Admission's bounded wait (web/admission.py) and the health check outside it (web/health.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from config.settings import Settings
from storage.db import make_engine
from tests.voting.conftest import candidates, code_from_outbox, fresh_limits  # noqa: F401 - fixtures
from web.admission import Admission
from web.app import create_app


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    return sqlite_engine



def test_a_request_waits_a_bounded_time_then_503(engine: Engine, web_settings: Settings) -> None:
    settings = web_settings.model_copy(update={"admission_read_wait_seconds": 0.3})
    release = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] != "/healthz":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    class State:
        pass

    holder = type("App", (), {"state": State()})()
    holder.state.engine, holder.state.settings = engine, settings  # type: ignore[attr-defined]
    admission = Admission(slow_app)

    async def call(path: str, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes, float]:
        out: list[Any] = []

        async def send(message: Any) -> None:
            out.append(message)

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        started = time.monotonic()
        await admission({"type": "http", "method": method, "path": path, "headers": [], "app": holder},
                        receive, send)
        return out[0]["status"], dict(out[0]["headers"]), out[1]["body"], time.monotonic() - started

    async def scenario() -> None:
        held = [asyncio.create_task(call("/candidates")) for _ in range(64)]  # far more than the read slots
        await asyncio.sleep(0.05)
        health = await call("/healthz")
        assert health[0] == 200 and health[3] < 0.2, "the health check does not queue"
        turned = await asyncio.wait_for(call("/api/campaign"), 5)
        assert turned[0] == 503 and turned[1][b"retry-after"].isdigit()
        assert 0.25 <= turned[3] < 2 and "稍后重试" in turned[2].decode()
        page = await call("/notice")
        assert page[0] == 503 and "请稍后重试" in page[2].decode() and page[1][b"content-type"].startswith(b"text/html")
        release.set()
        statuses = [r[0] for r in await asyncio.gather(*held)]
        assert 200 in statuses and set(statuses) <= {200, 503}
        assert (await call("/candidates"))[0] == 200, "the slots are given back"

    asyncio.run(scenario())


def test_healthz_answers_quickly_and_reports_the_database(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["database"] == "ok" and body["status"] == "ok"


def test_healthz_reports_a_database_that_is_down(tmp_path: Any, web_settings: Settings) -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    app = create_app(engine, web_settings, background=False, create_admin=False)

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            return await http.get("/healthz")

    started = time.monotonic()
    answer = asyncio.run(ask())
    assert time.monotonic() - started < 3
    assert answer.status_code == 503 and answer.json()["database"] != "ok"
