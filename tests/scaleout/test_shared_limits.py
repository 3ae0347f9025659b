"""The rate limits through the `limits` library: in memory without Redis, one count shared by
several processes with it, this process's count while Redis is down, the async path."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from core import limits
from core.errors import RateLimited
from core.limits import RateLimiter

ROOT = Path(__file__).resolve().parents[2]


def _admitted(limiter: RateLimiter, key: str, times: int) -> int:
    admitted = 0
    for _ in range(times):
        try:
            limiter.hit(key)
            admitted += 1
        except RateLimited:
            pass
    return admitted


def test_in_memory_the_limit_refuses_with_retry_after_and_chinese() -> None:
    limiter = RateLimiter(3, what="requests", what_zh="请求")
    for _ in range(3):
        limiter.hit("1.2.3.4")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("1.2.3.4")
    assert 1 <= refused.value.retry_after <= 60
    assert "每60秒最多3次" in refused.value.message_zh
    limiter.hit("5.6.7.8")  # another key has its own count
    limiter.reset()
    limiter.hit("1.2.3.4")  # counted afresh


def test_two_limiters_of_one_scope_in_memory_do_not_share() -> None:
    # the embedded default: each process (here: each limiter object) counts for itself
    first, second = RateLimiter(2, scope="same"), RateLimiter(2, scope="same")
    assert _admitted(first, "k", 3) == 2
    assert _admitted(second, "k", 3) == 2


def test_zero_turns_the_limit_off() -> None:
    assert _admitted(RateLimiter(0), "k", 50) == 50


def test_with_redis_two_instances_share_one_count(redis_url: str) -> None:
    scope = f"test-{uuid.uuid4().hex}"
    first = RateLimiter(5, storage_url=redis_url, scope=scope)
    second = RateLimiter(5, storage_url=redis_url, scope=scope)
    assert _admitted(first, "k", 3) + _admitted(second, "k", 4) == 5
    with pytest.raises(RateLimited) as refused:
        second.hit("k")
    assert 1 <= refused.value.retry_after <= 60


_WORKER = """
import sys
from core.errors import RateLimited
from core.limits import RateLimiter
limiter = RateLimiter(100, storage_url=sys.argv[1], scope=sys.argv[2])
admitted = 0
for _ in range(60):
    try:
        limiter.hit("one-address")
        admitted += 1
    except RateLimited:
        pass
print(admitted)
"""


def test_three_processes_admit_the_limit_once_not_three_times(redis_url: str) -> None:
    scope = f"test-{uuid.uuid4().hex}"
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, redis_url, scope], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True) for _ in range(3)]
    counts = [int(w.communicate(timeout=60)[0].strip()) for w in workers]
    assert sum(counts) == 100, counts  # 180 asked, 100 admitted in all, not 100 per process


def test_async_hits_share_the_count_with_sync_ones(redis_url: str) -> None:
    scope = f"test-{uuid.uuid4().hex}"
    limiter = RateLimiter(4, storage_url=redis_url, scope=scope)
    limiter.hit("k")

    async def run() -> int:
        admitted = 0
        for _ in range(5):
            try:
                await limiter.hit_async("k")
                admitted += 1
            except RateLimited as exc:
                assert exc.retry_after >= 1
        return admitted

    assert asyncio.run(run()) == 3


def test_redis_down_each_instance_counts_alone_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:1/{uuid.uuid4().int % 16}"  # nothing listens on port 1
    limiter = RateLimiter(3, storage_url=url, scope=f"test-{uuid.uuid4().hex}")
    with caplog.at_level(logging.WARNING, logger="jingong.limits"):
        assert _admitted(limiter, "k", 5) == 3  # still limited, by this process
        assert asyncio.run(_admitted_async(limiter, "k", 2)) == 0
    warnings = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1:1" in warnings[0] and "each instance counts alone" in warnings[0]


async def _admitted_async(limiter: RateLimiter, key: str, times: int) -> int:
    admitted = 0
    for _ in range(times):
        try:
            await limiter.hit_async(key)
            admitted += 1
        except RateLimited:
            pass
    return admitted


def test_redis_back_the_count_is_shared_again(redis_url: str, caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    scope = f"test-{uuid.uuid4().hex}"
    limiter = RateLimiter(3, storage_url=redis_url, scope=scope)
    monkeypatch.setattr(limits, "RETRY_SHARED_SECONDS", 0.0)
    limits._shared_failed(redis_url, ConnectionError("pretend outage"))
    with caplog.at_level(logging.WARNING, logger="jingong.limits"):
        limiter.hit("k")  # retried at once (0 s), answered
    assert any("answers again" in r.getMessage() for r in caplog.records)
    other = RateLimiter(3, storage_url=redis_url, scope=scope)
    assert _admitted(other, "k", 3) == 2  # the hit above was counted in Redis


def test_the_password_stays_out_of_the_log_line() -> None:
    assert limits.redacted("redis://:s3cret@redis.internal:6380/2") == "redis://redis.internal:6380/2"


def test_windows_follow_the_campaign_clock(redis_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from core.clock import ManualClock, use_clock

    for url in (None, redis_url):
        manual = ManualClock(datetime(2021, 7, 2, 9, 0, 10, tzinfo=UTC))
        limiter = RateLimiter(2, storage_url=url, scope=f"test-{uuid.uuid4().hex}")
        with use_clock(manual):
            assert _admitted(limiter, "k", 3) == 2
            with pytest.raises(RateLimited) as refused:
                limiter.hit("k")
            assert refused.value.retry_after == 50  # the window ends at 09:01:00
            manual.advance(timedelta(seconds=50))
            assert _admitted(limiter, "k", 3) == 2  # a new window
