"""Waking the background sender after a commit that queued or released mail.

A registry of callbacks (the running sender adds its own) and the after-commit hook that calls
them. Kept apart from the sender so that queueing mail needs no knowledge of how it is sent."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlmodel import Session

_wakers: list[Callable[[], None]] = []
_wakers_lock = threading.Lock()


def add_waker(callback: Callable[[], None]) -> None:
    with _wakers_lock:
        _wakers.append(callback)


def remove_waker(callback: Callable[[], None]) -> None:
    with _wakers_lock:
        if callback in _wakers:
            _wakers.remove(callback)


def wake_senders() -> None:
    with _wakers_lock:
        callbacks = list(_wakers)
    for callback in callbacks:
        callback()


def wake_after_commit(session: Session) -> None:
    # Only a committed row may be sent: the sender is told after the commit, never before.
    after_commit = getattr(session, "after_commit", None)
    if after_commit is not None and _wakers and not session.info.get("jingong_wake_senders"):
        session.info["jingong_wake_senders"] = True
        after_commit(wake_senders)
