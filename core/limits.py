"""Fixed-window rate limits through the `limits` library, counted where every app instance sees
them: in Redis when a Redis URL is given (REDIS_URL; several instances share one count), else in
this process's memory (the embedded default, one instance).

Redis unreachable: each limit falls back to this process's memory (one warning line per outage;
Redis is tried again every few seconds). That is neither failing open (no limit at all while
Redis is down) nor closed (every vote refused because a helper service is down): each instance
keeps counting alone, so N instances admit at most N times the limit until Redis answers again.

Windows are fixed and follow the campaign clock (``core.clock``): window k covers
[k*W, (k+1)*W) seconds since the epoch, the same for every instance whose clock agrees (NTP), and
a count lives in the store (the library's expiry) only as long as its window.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import FixedWindowRateLimiter as AsyncFixedWindow
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter as FixedWindow

from core import clock
from core.errors import RateLimited

log = logging.getLogger("jingong.limits")

#: a Redis that does not answer within this long counts as down (a vote must not wait for it)
REDIS_TIMEOUT_SECONDS = 0.5
#: after a failure, the shared store is tried again this long later (meanwhile: this process)
RETRY_SHARED_SECONDS = 5.0

_memory = MemoryStorage()  # one per process: each MemoryStorage runs an expiry timer thread
_memory_window = FixedWindow(_memory)
_shared: dict[str, FixedWindow] = {}
_shared_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncFixedWindow]] = (
    weakref.WeakKeyDictionary())
_down_until: dict[str, float] = {}
_registry_lock = threading.Lock()
_generations = itertools.count(1)


def redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _options() -> dict[str, Any]:
    return {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}


def _shared_window(url: str) -> FixedWindow:
    with _registry_lock:
        found = _shared.get(url)
        if found is None:
            found = _shared[url] = FixedWindow(RedisStorage(url, **_options()))
        return found


def _shared_window_async(url: str) -> AsyncFixedWindow:
    """The async client of ``url`` for the running event loop (a client belongs to one loop)."""
    loop = asyncio.get_running_loop()
    with _registry_lock:
        per_loop = _shared_async.setdefault(loop, {})
        found = per_loop.get(url)
        if found is None:
            storage = AsyncRedisStorage(f"async+{url}", implementation="redispy", **_options())
            found = per_loop[url] = AsyncFixedWindow(storage)
        return found


def _shared_usable(url: str) -> bool:
    until = _down_until.get(url)
    return until is None or time.monotonic() >= until


def _shared_failed(url: str, exc: Exception) -> None:
    with _registry_lock:
        first = url not in _down_until
        _down_until[url] = time.monotonic() + RETRY_SHARED_SECONDS
    if first:
        log.warning("rate limits: Redis at %s does not answer (%s: %s); each instance counts alone until it "
                    "does (tried again every %.0f s)", redacted(url), type(exc).__name__, exc, RETRY_SHARED_SECONDS)


def _shared_answered(url: str) -> None:
    if url in _down_until:
        with _registry_lock:
            was_down = _down_until.pop(url, None) is not None
        if was_down:
            log.warning("rate limits: Redis at %s answers again; the limits are shared again", redacted(url))


@dataclass
class RateLimiter:
    #: requests allowed per key and window; 0 = no limit
    limit: int
    window_seconds: int = 60
    what: str = "requests"
    what_zh: str = "请求"
    #: redis://host:port/db shared by every instance; None: this process only
    storage_url: str | None = None
    #: the name of the count in the store (instances sharing a limit use the same name)
    scope: str = ""
    _generation: int = field(default_factory=lambda: next(_generations))

    def __post_init__(self) -> None:
        self._item = RateLimitItemPerSecond(max(self.limit, 1), self.window_seconds,
                                            namespace=f"jingong/{self.scope or self.what}")

    def _window(self) -> tuple[int, float]:
        now = clock.now().timestamp()
        return int(now // self.window_seconds), now

    def hit(self, key: str) -> None:
        """Count one request of ``key``; raise RateLimited (with Retry-After) over the limit."""
        if self.limit <= 0:
            return
        window, now = self._window()
        url = self.storage_url
        if url and _shared_usable(url):
            try:
                allowed = _shared_window(url).hit(self._item, key, str(window))
            except Exception as exc:  # noqa: BLE001 - any Redis failure: count in this process
                _shared_failed(url, exc)
            else:
                _shared_answered(url)
                self._refuse_unless(allowed, window, now)
                return
        self._hit_memory(key, window, now)

    async def hit_async(self, key: str) -> None:
        """``hit`` for the event loop: the Redis round trip does not block the loop."""
        if self.limit <= 0:
            return
        window, now = self._window()
        url = self.storage_url
        if url and _shared_usable(url):
            try:
                allowed = await _shared_window_async(url).hit(self._item, key, str(window))
            except Exception as exc:  # noqa: BLE001 - any Redis failure: count in this process
                _shared_failed(url, exc)
            else:
                _shared_answered(url)
                self._refuse_unless(allowed, window, now)
                return
        self._hit_memory(key, window, now)  # memory only: no waiting, fine on the loop

    def _hit_memory(self, key: str, window: int, now: float) -> None:
        # memory counts carry the generation, so that reset() starts afresh without touching others
        self._refuse_unless(_memory_window.hit(self._item, key, str(window), str(self._generation)), window, now)

    def _refuse_unless(self, allowed: bool, window: int, now: float) -> None:
        if allowed:
            return
        retry = max(1, math.ceil((window + 1) * self.window_seconds - now))
        raise RateLimited(
            f"too many {self.what}: at most {self.limit} per {self.window_seconds} s; retry in {retry} s",
            retry_after=retry,
            message_zh=f"{self.what_zh}过于频繁，每{self.window_seconds}秒最多{self.limit}次，请{retry}秒后再试",
        )

    def reset(self) -> None:
        """Start counting afresh in this process (tests). Shared counts expire with their window."""
        self._generation = next(_generations)
