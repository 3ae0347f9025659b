"""A fixed-window rate limit kept in the process (one app instance). Memory is bounded by the keys
seen in the current window: older windows are dropped as soon as a new one starts."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

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
