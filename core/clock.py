"""The one place that reads the time.

Every service asks ``now()``; tests and the simulator swap the clock with ``use_clock``.
Instants are always aware datetimes in UTC.

``received()`` is the instant the act being served arrived: the web app stamps every request
when its last byte is in (``web.arrival``), before it waits for a thread, a connection or the
write lock, and every clock-enforced edge (the nomination deadline, the voting and objection
windows) judges that instant. Outside a request (CLI, scheduler) it is ``now()``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


def wall_now() -> datetime:
    """The real time, whatever clock is injected: only for talking to things that run on wall
    time themselves (APScheduler's timers). Everything about the campaign uses ``now()``."""
    return datetime.now(UTC)


class SystemClock:
    def now(self) -> datetime:
        return wall_now()


class OffsetClock:
    """Wall time shifted so that the process starts at ``start``: lets real processes live
    inside a campaign (e.g. on 31 May 2021) while time still flows."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        self._origin = datetime.now(UTC)
        self._start = ensure_utc(start)
        self._speed = speed

    def now(self) -> datetime:
        elapsed = datetime.now(UTC) - self._origin
        return self._start + elapsed * self._speed


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = ensure_utc(instant)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


def ensure_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: an instant needs a time zone")
    return value.astimezone(UTC)


def _clock_from_environment() -> Clock:
    # JINGONG_CLOCK_START lets a real process (tests, demos) run inside a past campaign.
    start = os.environ.get("JINGONG_CLOCK_START")
    if not start:
        return SystemClock()
    speed = float(os.environ.get("JINGONG_CLOCK_SPEED", "1"))
    return OffsetClock(datetime.fromisoformat(start), speed)


_clock: Clock = _clock_from_environment()


def now() -> datetime:
    return _clock.now()


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> Clock:
    global _clock
    previous, _clock = _clock, clock
    return previous


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


_received: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("jingong_received", default=None)


def received() -> datetime:
    """When the act being served arrived (see the module's note), or now outside a request."""
    return _received.get() or now()


def arrived(instant: datetime) -> contextvars.Token[datetime | None]:
    """Mark ``instant`` as the arrival of what this context serves; ``contextvars`` carry it
    into the worker thread that runs the request."""
    return _received.set(ensure_utc(instant))


def forget_arrival(token: contextvars.Token[datetime | None]) -> None:
    _received.reset(token)
