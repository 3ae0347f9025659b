"""Login throttles: a fixed-window limit per network address (shared by every instance through
Redis when REDIS_URL is set); kept in the process: the bound on password checks running at once,
and the stand-in lock state of names that are no account (so a lock does not tell which names
exist)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from config.settings import Settings
from core import clock
from core.limits import RateLimiter

#: unknown names remembered at most; beyond that the oldest state is forgotten wholesale
_MAX_PHANTOMS = 10_000


@dataclass
class LockState:
    """One account's failures and lock, as the account row keeps them (see accounts.login)."""

    failures: int = 0
    lockouts: int = 0
    locked_until: datetime | None = None


def lock_duration(lockouts_before: int, settings: Settings) -> timedelta:
    """The lock that starts now, after ``lockouts_before`` earlier ones: doubling, capped."""
    seconds = settings.login_lock_seconds * 2 ** min(lockouts_before, 40)
    return timedelta(seconds=min(seconds, settings.login_lock_max_seconds))


def next_state(state: LockState, now: datetime, settings: Settings) -> LockState | None:
    """The state after one more claimed attempt, or None while locked (the attempt is refused).
    The account row's one UPDATE statement (accounts.login.claim) computes the same."""
    if state.locked_until is not None and state.locked_until > now:
        return None
    failures = 1 if state.locked_until is not None else state.failures + 1
    if failures >= settings.login_max_failures:
        return LockState(failures, state.lockouts + 1, now + lock_duration(state.lockouts, settings))
    return LockState(failures, state.lockouts, None)


class PhantomLocks:
    """Lock states of names that are no account, so they answer as an account would."""

    def __init__(self) -> None:
        self._states: dict[str, LockState] = {}
        self._lock = threading.Lock()

    def claim(self, name: str, settings: Settings) -> tuple[LockState, bool]:
        """The state after claiming an attempt and True, or the locked state and False."""
        with self._lock:
            state = self._states.get(name, LockState())
            after = next_state(state, clock.now(), settings)
            if after is None:
                return state, False
            if len(self._states) >= _MAX_PHANTOMS:
                self._states.clear()
            self._states[name] = after
            return after, True

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


_limiters: dict[tuple[int, str | None], RateLimiter] = {}
_semaphores: dict[int, threading.BoundedSemaphore] = {}
_registry_lock = threading.Lock()
phantoms = PhantomLocks()


def address_limiter(settings: Settings) -> RateLimiter:
    with _registry_lock:
        key = (settings.login_rate_per_address_minute, settings.redis_url)
        found = _limiters.get(key)
        if found is None:
            found = _limiters[key] = RateLimiter(
                settings.login_rate_per_address_minute, what="login attempts from this address",
                what_zh="此网络地址登录尝试", storage_url=settings.redis_url, scope="login-address")
        return found


def verify_slots(settings: Settings) -> threading.BoundedSemaphore:
    with _registry_lock:
        found = _semaphores.get(settings.login_verify_concurrency)
        if found is None:
            found = _semaphores[settings.login_verify_concurrency] = threading.BoundedSemaphore(
                settings.login_verify_concurrency)
        return found


def reset_throttles() -> None:
    """Forget every address count and stand-in lock (tests)."""
    with _registry_lock:
        _limiters.clear()
    phantoms.reset()
