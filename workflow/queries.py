"""What the workflow reads: nominations by state, and the transition log (one nomination's
history, the committee's search)."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from nominations.models import Nomination
from nominations.states import State
from workflow.machine import Event
from workflow.models import TransitionRecord


def count_in_state(session: Session, campaign_id: int, state: State) -> int:
    return session.exec(
        select(func.count()).select_from(Nomination).where(
            Nomination.campaign_id == campaign_id, Nomination.state == state.value
        )
    ).one()


def ids_in_state(session: Session, campaign_id: int, state: State) -> list[int]:
    query = select(Nomination.id).where(Nomination.campaign_id == campaign_id, Nomination.state == state.value)
    return [i for i in session.exec(query.order_by(col(Nomination.id))).all() if i is not None]


def history(session: Session, nomination_id: int) -> list[TransitionRecord]:
    query = select(TransitionRecord).where(TransitionRecord.nomination_id == nomination_id)
    return list(session.exec(query.order_by(col(TransitionRecord.id))))


def search_log(session: Session, campaign_id: int, *, nomination_id: int | None = None, actor: str | None = None,
               event: Event | None = None, limit: int = 300) -> list[TransitionRecord]:
    """The campaign's records as the committee's audit page searches them, newest first;
    ``actor`` matches part of the actor's name."""
    query = select(TransitionRecord).where(TransitionRecord.campaign_id == campaign_id)
    if nomination_id is not None:
        query = query.where(TransitionRecord.nomination_id == nomination_id)
    if actor is not None:
        query = query.where(col(TransitionRecord.actor).contains(actor))
    if event is not None:
        query = query.where(TransitionRecord.event == event.value)
    return list(session.exec(query.order_by(col(TransitionRecord.id).desc()).limit(limit)))
