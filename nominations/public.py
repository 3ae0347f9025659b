"""What the public sees of candidates: the deeds of the shortlisted (once voting has opened), the
formal candidates on the notice (once it has opened), the commended, and their photos. Only
name, unit, photo, deeds and awards; never phone or birth date."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlmodel import Session

from campaigns import decisions
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import StageName
from core import clock
from core.errors import NotFound
from nominations import attachments
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import State

DEEDS_STATES = (State.SHORTLISTED, State.VOTED, State.VETTED, State.ON_HOLD, State.PUBLICIZED, State.COMMENDED,
                State.NOT_SELECTED)
NOTICE_STATES = (State.VETTED, State.ON_HOLD, State.PUBLICIZED, State.COMMENDED)
COMMENDED_STATES = (State.PUBLICIZED, State.COMMENDED)


@dataclass(frozen=True)
class PublicCandidate:
    id: int
    name: str
    employer: str
    unit: str
    position: str
    technical_grade: str
    honours: str
    deeds: str
    track: str
    has_photo: bool
    #: 编号 on the voting pages and posters (``numbered``); 0 on the lists that have none
    number: int = 0
    #: 主要技术成果: on the winner's page only, not in the lists or the API
    achievements: str = ""

    def as_public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "employer": self.employer, "unit": self.unit,
                "position": self.position, "technical_grade": self.technical_grade, "honours": self.honours,
                "deeds": self.deeds, "track": self.track or None,
                "photo_url": f"/public/photos/{self.id}" if self.has_photo else None,
                **({"number": self.number} if self.number else {})}


def _public(session: Session, n: Nomination) -> PublicCandidate:
    unit = campaigns.find_unit(session, n.unit_id)
    return PublicCandidate(id=n.id or 0, name=n.name or "", employer=n.employer or "", unit=unit.name if unit else "",
                           position=n.position or "", technical_grade=n.technical_grade or "",
                           honours=n.honours or "", deeds=n.deeds or "", track=n.track or "",
                           has_photo=n.photo_attachment_id is not None, achievements=n.achievements or "")


def published(session: Session, campaign: Campaign, stage_name: StageName) -> bool:
    """A stage's list is public once the stage has opened (by the calendar or by hand)."""
    stage = campaigns.get_stage(session, campaign.id or 0, stage_name)
    return stage.opened_at is not None or clock.now() >= stage.opens_at


def deeds_rows(session: Session, campaign: Campaign) -> list[PublicCandidate]:
    """The shortlisted (and those after them), each with their 编号, in its order."""
    if not published(session, campaign, StageName.VOTING):
        return []
    rows = nominations.list_nominations(session, campaign.id or 0, states=DEEDS_STATES)
    numbers = _numbers(rows, nominations.highest_ballot_number(session, campaign.id or 0))
    return sorted((replace(_public(session, n), number=numbers[n.id or 0]) for n in rows), key=lambda c: c.number)


def _numbers(rows: list[Nomination], highest: int) -> dict[int, int]:
    """Each row's 编号: the stored one, else the next numbers after the highest ever given, in the
    order of the nomination's id (what ``assign_numbers`` stores, and what the pages show in the
    moment between the calendar's opening instant and the open step)."""
    numbers = {n.id or 0: n.ballot_number for n in rows if n.ballot_number}
    following = highest
    for n in sorted((n for n in rows if not n.ballot_number), key=lambda n: n.id or 0):
        following += 1
        numbers[n.id or 0] = following
    return numbers


def assign_numbers(session: Session, campaign: Campaign) -> int:
    """Store the 编号 of everyone on the list without one (when voting opens): 1, 2, 3 … in the
    order of the nomination's id, i.e. the order their drafts were first saved; anyone numbered
    later comes after every number already given. A number is never changed or given again: a
    candidate who leaves the list (withdrawn, disqualified) takes theirs away, so a number shared
    in a chat stays the same person. Returns how many were numbered."""
    rows = nominations.list_nominations(session, campaign.id or 0, states=DEEDS_STATES)
    numbers = _numbers(rows, nominations.highest_ballot_number(session, campaign.id or 0))
    fresh = [n for n in rows if not n.ballot_number]
    for n in fresh:
        n.ballot_number = numbers[n.id or 0]
        session.add(n)
    return len(fresh)


def by_number(session: Session, campaign: Campaign, number: int) -> PublicCandidate:
    """The candidate with this 编号, while the deeds are public; 404 otherwise."""
    for candidate in deeds_rows(session, campaign):
        if candidate.number == number:
            return candidate
    raise NotFound(f"no candidate number {number}", message_zh=f"没有编号为{number}的候选人")


def notice_rows(session: Session, campaign: Campaign) -> list[PublicCandidate]:
    if not published(session, campaign, StageName.NOTICE):
        return []
    rows = nominations.list_nominations(session, campaign.id or 0, states=NOTICE_STATES)
    return sorted((_public(session, n) for n in rows), key=lambda c: (c.track != "main", c.id))


def honoured_rows(session: Session, campaign: Campaign) -> list[PublicCandidate]:
    """Whom the commendation decision names (publicized or commended), published or not: for the
    office's draft of the decision."""
    rows = nominations.list_nominations(session, campaign.id or 0, states=COMMENDED_STATES)
    return [_public(session, n) for n in rows]


def commended_rows(session: Session, campaign: Campaign) -> list[PublicCandidate]:
    """The commended: public once the office publishes the commendation decision. Until the
    commendation stage closes they are the publicized (the notice passed without a ruling against)."""
    if decisions.published_decision(session, campaign.id or 0) is None:
        return []
    return sorted(honoured_rows(session, campaign), key=lambda c: (c.track != "main", c.id))


def winner(session: Session, campaign: Campaign, nomination_id: int) -> PublicCandidate:
    """One commended person's public page (集中宣传); the same 404 for anyone else."""
    found = next((c for c in commended_rows(session, campaign) if c.id == nomination_id), None)
    if found is None:
        raise NotFound("no such commended person", message_zh="没有该受表彰人员")
    return found


def photo(session: Session, campaign: Campaign, nomination_id: int, uploads_dir: Path) -> attachments.StoredFile:
    """A candidate's photo, only while they are on a public list; every refusal is the same 404."""
    missing = NotFound("no such photo", message_zh="没有该照片")
    visible = {c.id for c in deeds_rows(session, campaign)} | {c.id for c in notice_rows(session, campaign)} | {
        c.id for c in commended_rows(session, campaign)}
    if nomination_id not in visible:
        raise missing
    photo_id = nominations.get(session, nomination_id).photo_attachment_id
    if photo_id is None:
        raise missing
    try:
        return attachments.fetch(session, uploads_dir, photo_id)
    except NotFound:
        raise missing from None
