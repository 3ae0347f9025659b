"""Two real app instances (uvicorn) on one PostgreSQL and one Redis: an act through instance A shows
on the very next request to instance B, whose page was cached a moment before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import PG_ADMIN_URL, _pg_available
from tests.web.rush import scratch_postgres
from tests.web.server import running_server
from tests.web.test_api import form_json

pytestmark = pytest.mark.slow
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def shared() -> Iterator[tuple[str, str]]:
    """A scratch database and a Redis key prefix of this test's own."""
    problem = _pg_available()
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis unreachable: {exc}")
    prefix = f"jingong-test-{uuid.uuid4().hex[:10]}:"
    with scratch_postgres(PG_ADMIN_URL) as url:
        yield url, prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_an_act_through_one_instance_shows_on_the_next_request_to_another(
        tmp_path: Path, shared: tuple[str, str]) -> None:
    url, prefix = shared
    env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}
    with running_server(tmp_path / "a", database_url=url, env=env) as a, \
         running_server(tmp_path / "b", database_url=url, env=env, first_start=False) as b, \
         httpx.Client(base_url=a.url) as on_a, httpx.Client(base_url=b.url) as on_b:
        draft = on_a.post("/api/nominations", json=form_json())
        assert draft.status_code == 201, draft.text
        seen = on_b.get("/api/campaign")
        assert seen.json()["counts"]["draft"] == 1
        assert on_b.get("/api/campaign", headers={"If-None-Match": seen.headers["etag"]}).status_code in (200, 304)
        login = on_a.post("/api/session", json={"username": "admin", "password": a.admin_password})
        assert login.status_code == 200, login.text
        fired = on_a.post(f"/api/committee/nominations/{draft.json()['id']}/events",
                          json={"event": "withdraw", "reason": "申报人撤回"},
                          headers={"x-csrf-token": login.json()["csrf_token"]})
        assert fired.status_code == 200 and fired.json()["state"] == "withdrawn", fired.text
        after = on_b.get("/api/campaign", headers={"If-None-Match": seen.headers["etag"]})
        assert after.status_code == 200, "the validator of the old page no longer matches"
        assert after.json()["counts"]["draft"] == 0 and after.json()["counts"]["withdrawn"] == 1
        assert redis.Redis.from_url(REDIS_URL).get(f"{prefix}public-version:{url.rsplit('/', 1)[1]}") is not None


def test_redis_readers_share_round_trips_and_see_every_move() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis unreachable: {exc}")
    from storage.public_version import RedisVersion

    key = f"jingong-test-{uuid.uuid4().hex[:10]}:public-version"
    store = RedisVersion(REDIS_URL, key)

    async def scenario() -> None:
        crowd = await asyncio.gather(*(store.current() for _ in range(200)))
        assert set(crowd) == {"0"}
        store.bump()
        assert await store.current() == "1", "a reader arriving after a move sees it"
        first = asyncio.ensure_future(store.current())
        await asyncio.sleep(0)  # its GET is in flight
        store.bump()
        late = await store.current()  # arrived after the move: must not share the earlier GET
        assert late == "2" and (await first) in ("1", "2")

    try:
        asyncio.run(scenario())
    finally:
        redis.Redis.from_url(REDIS_URL).delete(key)


def test_redis_down_means_uncached_not_an_error() -> None:
    from storage.public_version import RedisVersion

    store = RedisVersion("redis://127.0.0.1:1/0", "nowhere")
    assert asyncio.run(store.current()) is None
