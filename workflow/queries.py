"""What the workflow reads: nominations by state, and the transition log."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from nominations.models import Nomination
from nominations.states import State
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
