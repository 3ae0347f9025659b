"""Where side effects of a state change plug in (notifications, caches) without touching
callers. Listeners run inside the transition's database transaction: what they write commits
or rolls back with the state change."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlmodel import Session

    from nominations.models import Nomination
    from workflow.models import TransitionRecord

TransitionListener = Callable[["Session", "Nomination", "TransitionRecord"], None]

_listeners: list[TransitionListener] = []


def on_transition(listener: TransitionListener) -> TransitionListener:
    """Register ``listener`` (idempotent); usable as a decorator."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def remove_listener(listener: TransitionListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def dispatch(session: Session, nomination: Nomination, record: TransitionRecord) -> None:
    for listener in list(_listeners):
        listener(session, nomination, record)
