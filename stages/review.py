"""递补: when the review is short of qualified candidates (one of the shortlist failed vetting), the
office admin may bring back into the review the candidate not selected with the most votes, instead
of closing it short (``workflow.shortfall``). Only while the review is open; the reason is required
and kept in the transition log, and the applicant is mailed like at every change."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.actor import Actor
from core.errors import GuardFailed, ValidationFailed
from nominations.models import Nomination
from nominations.states import State
from voting import tally
from workflow import service as workflow
from workflow.machine import Event


def next_in_line(session: Session, campaign_id: int) -> tuple[Nomination, int] | None:
    """The candidate not selected with the most votes (frozen tally; ties: the earlier nomination)."""
    waiting = session.exec(select(Nomination).where(Nomination.campaign_id == campaign_id,
                                                    Nomination.state == State.NOT_SELECTED.value)
                           .order_by(col(Nomination.id))).all()
    if not waiting:
        return None
    votes = tally.tally(session, campaign_id)
    best = max(waiting, key=lambda n: (votes.get(n.id or 0, 0), -(n.id or 0)))
    return best, votes.get(best.id or 0, 0)


def bring_next(session: Session, campaign_id: int, *, actor: Actor, reason: str | None) -> tuple[Nomination, int]:
    """Bring the next by vote count back into the review (state ``voted``)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("bringing a candidate back needs a reason", message_zh="请填写递补理由")
    found = next_in_line(session, campaign_id)
    if found is None:
        raise GuardFailed("no candidate was left out of the review: there is no one to bring back",
                          message_zh="没有可递补的人选（无“未入选正式候选人”者）")
    nomination, votes = found
    workflow.transition(session, nomination.id or 0, Event.RECONSIDER, actor=actor, reason=reason,
                        data={"votes": votes})
    return nomination, votes
