"""The tally: the live counters, the recount from the vote rows, the standings the committee sees,
the invalidation of a vote, and the freeze at the voting close that hands the tally on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns.models import Campaign, Stage
from core import clock
from core.actor import Actor
from core.errors import Conflict, GuardFailed, NotFound, ValidationFailed
from nominations.models import Nomination
from voting.models import FrozenTally, Vote, VoteCounter
from voting.monitor import scan_flags
from voting.windows import candidates, clear_caches


@dataclass(frozen=True)
class Mismatch:
    nomination_id: int
    counter: int
    rows: int


@dataclass(frozen=True)
class Standing:
    nomination_id: int
    name: str | None
    employer: str | None
    votes: int


@dataclass(frozen=True)
class Standings:
    frozen: bool
    rows: list[Standing]  # most votes first

    def names(self) -> dict[int, str | None]:
        return {r.nomination_id: r.name for r in self.rows}


def recount(session: Session, campaign_id: int) -> dict[int, int]:
    """The tally from the rows themselves: valid votes per candidate."""
    rows = session.execute(select(Vote.nomination_id, func.count()).where(
        Vote.campaign_id == campaign_id, col(Vote.valid).is_(True)).group_by(col(Vote.nomination_id))).all()
    return {int(n): int(c) for n, c in rows}


def counters(session: Session, campaign_id: int) -> dict[int, int]:
    rows = session.exec(select(VoteCounter).where(VoteCounter.campaign_id == campaign_id)).all()
    return {r.nomination_id: r.votes for r in rows}


def frozen(session: Session, campaign_id: int) -> dict[int, int] | None:
    rows = session.exec(select(FrozenTally).where(FrozenTally.campaign_id == campaign_id)).all()
    return {r.nomination_id: r.votes for r in rows} if rows else None


def _current(session: Session, campaign_id: int) -> tuple[dict[int, int], bool]:
    """The frozen tally once voting closed (True), the live counters before (False)."""
    fixed = frozen(session, campaign_id)
    return (fixed, True) if fixed is not None else (counters(session, campaign_id), False)


def tally(session: Session, campaign_id: int) -> dict[int, int]:
    """The frozen tally once voting closed, the live counters before."""
    return _current(session, campaign_id)[0]


def tally_of(session: Session, campaign: Campaign, nomination: Nomination) -> int | None:
    """What the review board shows beside a candidate (None: never on the voting list)."""
    if nomination.id is None:
        return None
    return tally(session, campaign.id or 0).get(nomination.id, 0)


def compare(live: dict[int, int], truth: dict[int, int]) -> list[Mismatch]:
    """Every candidate whose live counter differs from the count of its valid vote rows."""
    return [Mismatch(n, live.get(n, 0), truth.get(n, 0)) for n in sorted(set(live) | set(truth))
            if live.get(n, 0) != truth.get(n, 0)]


def verify(session: Session, campaign_id: int) -> list[Mismatch]:
    return compare(counters(session, campaign_id), recount(session, campaign_id))


def standings(session: Session, campaign_id: int) -> Standings:
    """The tally with each candidate's name and employer, most votes first (what the committee
    sees: frozen after the close, live before)."""
    counts, is_frozen = _current(session, campaign_id)
    people = {n.id: n for n in session.exec(select(Nomination).where(col(Nomination.id).in_(list(counts))))}
    rows = [Standing(n, people[n].name if n in people else None, people[n].employer if n in people else None, v)
            for n, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Standings(is_frozen, rows)


def invalidate(session: Session, vote_id: int, *, actor: Actor, reason: str, category: str = "other") -> Vote:
    """Mark a vote invalid (the row stays) and take it off the live counter, with the reason audited."""
    if not (reason or "").strip():
        raise ValidationFailed("a reason is required to invalidate a vote", message_zh="请填写作废理由")
    vote = session.get(Vote, vote_id)
    if vote is None:
        raise NotFound(f"no vote {vote_id}", message_zh="未找到该投票记录")
    if not vote.valid:
        raise Conflict(f"vote {vote_id} is already invalid ({vote.invalid_reason})", message_zh="该票已作废")
    if frozen(session, vote.campaign_id) is not None:
        raise GuardFailed("the tally is frozen: voting has closed", message_zh="投票已截止，计票结果已冻结，不能再作废")
    vote.valid = False
    vote.invalidated_at = clock.now()
    vote.invalidated_by = str(actor)
    vote.invalid_reason = reason.strip()
    vote.invalid_category = category  # what the published list shows (voting.publication.CATEGORIES)
    session.add(vote)
    session.execute(update(VoteCounter).where(col(VoteCounter.nomination_id) == vote.nomination_id)
                    .values(votes=VoteCounter.votes - 1))
    audit.record(session, actor=actor, action="vote_invalidated", subject=f"vote:{vote_id}", reason=reason,
                 campaign_id=vote.campaign_id, data={"nomination_id": vote.nomination_id, "day": vote.day})
    return vote


def list_votes(session: Session, campaign_id: int, *, nomination_id: int | None = None,
               limit: int = 200) -> list[Vote]:
    query = select(Vote).where(Vote.campaign_id == campaign_id)
    if nomination_id is not None:
        query = query.where(Vote.nomination_id == nomination_id)
    return list(session.exec(query.order_by(col(Vote.id).desc()).limit(limit)))


def freeze(session: Session, campaign: Campaign, stage: Stage) -> None:
    """Inside the voting close step (a stage-close listener, wired by ``wiring.bootstrap``): fix the
    tally from the rows (every candidate, zero included), flag what the last minutes brought, and
    audit it. A second close changes nothing."""
    cid = campaign.id or 0
    clear_caches()
    if frozen(session, cid) is not None:
        return
    truth = recount(session, cid)
    mismatches = compare(counters(session, cid), truth)
    now = clock.now()
    listed = candidates(session, cid, fresh=True) | set(truth)
    for nomination_id in sorted(listed):
        session.add(FrozenTally(campaign_id=cid, nomination_id=nomination_id, votes=truth.get(nomination_id, 0),
                                frozen_at=now))
    scan_flags(session, cid)
    audit.record(session, actor=Actor.system(), action="votes_frozen", subject=stage.name, campaign_id=cid,
                 data={"tally": {str(n): truth.get(n, 0) for n in sorted(listed)},
                       "total": sum(truth.values()), "counter_mismatches": len(mismatches)})
