"""Redis for the shared rate limits: the machine's (127.0.0.1:6379). In CI it must answer."""

from __future__ import annotations

import os

import pytest
import redis

REDIS_URL = os.environ.get("JINGONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") or os.environ.get("JINGONG_REQUIRE_POSTGRES"):
            pytest.fail(f"Redis required but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    return REDIS_URL
