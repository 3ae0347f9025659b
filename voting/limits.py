"""Fixed-window rate limits kept in the process (one app instance), and the voting's three of them
(per address, per voter, per address asking for codes). Memory is bounded by the keys seen in the
current window: older windows are dropped as soon as a new one starts."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from config.settings import Settings, get_settings
from core import clock
from core.errors import RateLimited


@dataclass
class RateLimiter:
    #: requests allowed per key and window; 0 = no limit
    limit: int
    window_seconds: int = 60
    what: str = "requests"
    what_zh: str = "请求"
    _window: int = -1
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: str) -> None:
        """Count one request of ``key``; raise RateLimited (with Retry-After) over the limit."""
        if self.limit <= 0:
            return
        now = clock.now().timestamp()
        window = int(now // self.window_seconds)
        with self._lock:
            if window != self._window:
                self._window = window
                self._counts = {}
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        if count > self.limit:
            retry = int((window + 1) * self.window_seconds - now) + 1
            raise RateLimited(
                f"too many {self.what}: at most {self.limit} per {self.window_seconds} s; retry in {retry} s",
                retry_after=retry,
                message_zh=f"{self.what_zh}过于频繁，每{self.window_seconds}秒最多{self.limit}次，请{retry}秒后再试",
            )

    def reset(self) -> None:
        with self._lock:
            self._counts = {}
            self._window = -1


@dataclass
class Limiters:
    address: RateLimiter
    voter: RateLimiter
    codes: RateLimiter


_limiters: dict[tuple[int, int], Limiters] = {}


def limiters(settings: Settings | None = None) -> Limiters:
    settings = settings or get_settings()
    key = (settings.vote_rate_per_address_minute, settings.vote_rate_per_voter_minute)
    found = _limiters.get(key)
    if found is None:
        found = _limiters[key] = Limiters(
            address=RateLimiter(settings.vote_rate_per_address_minute, what="requests from this address",
                                what_zh="来自此网络地址的请求"),
            voter=RateLimiter(settings.vote_rate_per_voter_minute, what="votes from this voter", what_zh="投票"),
            codes=RateLimiter(max(1, settings.vote_rate_per_address_minute // 4) if key[0] else 0,
                              what="code requests from this address", what_zh="获取验证码"),
        )
    return found


def reset_limits() -> None:
    for found in _limiters.values():
        for limiter in (found.address, found.voter, found.codes):
            limiter.reset()
