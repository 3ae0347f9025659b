"""The transition records of a campaign as the committee's audit page searches them."""

from __future__ import annotations

from sqlmodel import Session, col, select

from workflow.machine import Event
from workflow.models import TransitionRecord


def search(session: Session, campaign_id: int, *, nomination_id: int | None = None, actor: str | None = None,
           event: Event | None = None, limit: int = 300) -> list[TransitionRecord]:
    """The newest records first; ``actor`` matches part of the actor's name."""
    query = select(TransitionRecord).where(TransitionRecord.campaign_id == campaign_id)
    if nomination_id is not None:
        query = query.where(TransitionRecord.nomination_id == nomination_id)
    if actor is not None:
        query = query.where(col(TransitionRecord.actor).contains(actor))
    if event is not None:
        query = query.where(TransitionRecord.event == event.value)
    return list(session.exec(query.order_by(col(TransitionRecord.id).desc()).limit(limit)))
