"""The review's shortfall: fewer qualified candidates than the awards (a shortlist of 20, one fails
vetting). The notice names the counts but not this case; it is the committee's to decide. The
office admin may close the review with the candidates it has, with a reason, audited; the review's
close then accepts exactly the counts decided on (``guards.check_review``)."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from audit import service as audit
from campaigns import service as campaigns
from config.campaign import Track
from core.actor import Actor
from core.errors import GuardFailed, ValidationFailed
from nominations import service as nominations
from nominations.models import Nomination, PriorAwardKind
from nominations.states import State

ACTION = "review_shortfall_decided"
TRACK_ZH = {Track.MAIN: "津工精匠", Track.FINALIST: "入围奖"}


def named(session: Session, campaign_id: int) -> dict[Track, int]:
    """Formal candidates named so far, per track."""
    return {track: session.exec(select(func.count()).select_from(Nomination).where(
        Nomination.campaign_id == campaign_id, Nomination.state == State.VETTED.value,
        Nomination.track == track.value)).one() for track in Track}


def could_still_fill(session: Session, campaign_id: int, track: Track) -> int:
    """Candidates still in review (voted) who may be placed in ``track``."""
    spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id))
    waiting = session.exec(select(Nomination).where(Nomination.campaign_id == campaign_id,
                                                    Nomination.state == State.VOTED.value)
                           .order_by(col(Nomination.id))).all()
    if track is Track.MAIN:
        return len(waiting)
    return sum(1 for n in waiting
               if not any(p.award == PriorAwardKind.FINALIST for p in nominations.prior_awards_of(session, n, spec)))


def shortage(session: Session, campaign_id: int) -> str | None:
    """What is short, in Chinese, when the review cannot name the configured counts with the
    candidates it has; None when it can (or is not short)."""
    spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id))
    counts = named(session, campaign_id)
    short = [t for t in Track if counts[t] < spec.awards.for_track(t)]
    if not short or any(counts[t] > spec.awards.for_track(t) for t in Track):
        return None
    if any(could_still_fill(session, campaign_id, t) for t in short):
        return None
    return "，".join(f"{TRACK_ZH[t]}{counts[t]}/{spec.awards.for_track(t)}" for t in Track)


def decide(session: Session, campaign_id: int, *, actor: Actor, reason: str | None) -> dict[Track, int]:
    """Record the decision to close the review with the formal candidates named now."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("a shortfall decision needs a reason", message_zh="请填写决定理由")
    short = shortage(session, campaign_id)
    if short is None:
        raise GuardFailed(
            "no shortfall: the review can still name the configured counts (place the remaining candidates first)",
            message_zh="目前并非人选不足：尚有可列入的候选人，或人数已符合名额",
        )
    counts = named(session, campaign_id)
    audit.record(session, actor=actor, action=ACTION, subject="review", reason=reason, campaign_id=campaign_id,
                 data={"named": {t.value: n for t, n in counts.items()}, "shortage_zh": short})
    return counts


def decided_for(session: Session, campaign_id: int, counts: dict[Track, int]) -> bool:
    """Whether a shortfall decision covers exactly these counts."""
    wanted = {t.value: n for t, n in counts.items()}
    return any(e.data.get("named") == wanted for e in audit.list_events(session, campaign_id=campaign_id,
                                                                         action=ACTION, limit=20))
