"""Public pages: the shortlisted candidates' deeds, the public notice with the objection form,
the commendation list. Only name, unit, photo, deeds and awards; never phone or birth date."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlmodel import Session

from campaigns import service as campaigns
from campaigns.models import Campaign, NominatingUnit
from config.campaign import StageName
from core import clock
from core.errors import JingongError, NotFound
from nominations import service as nominations
from nominations.models import Attachment, Nomination
from nominations.states import State
from web import objections
from web.deps import CampaignDep, SessionDep, SettingsDep, SpecDep
from web.errors import message_zh, status_of
from web.schemas import NominationId
from web.templating import TRACK_LABELS_ZH, render

router = APIRouter(include_in_schema=False)

DEEDS_STATES = (State.SHORTLISTED, State.VOTED, State.VETTED, State.ON_HOLD, State.PUBLICIZED, State.COMMENDED,
                State.NOT_SELECTED)
NOTICE_STATES = (State.VETTED, State.ON_HOLD, State.PUBLICIZED, State.COMMENDED)


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

    def as_public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "employer": self.employer, "unit": self.unit,
                "position": self.position, "technical_grade": self.technical_grade, "honours": self.honours,
                "deeds": self.deeds, "track": self.track or None,
                "photo_url": f"/public/photos/{self.id}" if self.has_photo else None}


def _public(session: Session, n: Nomination) -> PublicCandidate:
    unit = session.get(NominatingUnit, n.unit_id) if n.unit_id else None
    return PublicCandidate(id=n.id or 0, name=n.name or "", employer=n.employer or "", unit=unit.name if unit else "",
                           position=n.position or "", technical_grade=n.technical_grade or "",
                           honours=n.honours or "", deeds=n.deeds or "", track=n.track or "",
                           has_photo=n.photo_attachment_id is not None)


def published(session: Session, campaign: Campaign, stage_name: StageName) -> bool:
    """A stage's list is public once the stage has opened (by the calendar or by hand)."""
    stage = campaigns.get_stage(session, campaign.id or 0, stage_name)
    return stage.opened_at is not None or clock.now() >= stage.opens_at


def deeds_rows(session: Session, campaign: Campaign) -> list[PublicCandidate]:
    if not published(session, campaign, StageName.VOTING):
        return []
    rows = nominations.list_nominations(session, campaign.id or 0, states=DEEDS_STATES)
    return [_public(session, n) for n in rows]


def notice_rows(session: Session, campaign: Campaign) -> list[PublicCandidate]:
    if not published(session, campaign, StageName.NOTICE):
        return []
    rows = nominations.list_nominations(session, campaign.id or 0, states=NOTICE_STATES)
    return sorted((_public(session, n) for n in rows), key=lambda c: (c.track != "main", c.id))


def commended_rows(session: Session, campaign: Campaign) -> list[PublicCandidate]:
    rows = nominations.list_nominations(session, campaign.id or 0, states=[State.COMMENDED])
    return sorted((_public(session, n) for n in rows), key=lambda c: (c.track != "main", c.id))


@router.get("/candidates")
def deeds_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    rows = deeds_rows(session, campaign)
    voting = campaigns.get_stage(session, campaign.id or 0, StageName.VOTING)
    return render(request, "public/candidates.html", {"campaign": campaign, "candidates": rows, "voting": voting,
                                                      "voting_open": campaigns.is_open(voting)})


@router.get("/notice")
def notice_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    return _notice(request, session, campaign)


def _notice(request: Request, session: Session, campaign: Campaign, *, error: str | None = None,
            values: dict[str, str] | None = None, status_code: int = 200) -> Response:
    stage = campaigns.get_stage(session, campaign.id or 0, StageName.NOTICE)
    rows = notice_rows(session, campaign)
    return render(request, "public/notice.html", {
        "campaign": campaign, "candidates": rows, "stage": stage, "open": campaigns.is_open(stage),
        "tracks": TRACK_LABELS_ZH, "error": error, "values": values or {},
        "done": request.query_params.get("done") == "1",
    }, status_code=status_code)


@router.post("/notice/objections")
async def objection_post(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    form = await request.form()
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    try:
        raw_id = values.get("nomination_id", "")
        if not raw_id.isdigit() or len(raw_id) > 9:
            raise NotFound("choose a candidate", message_zh="请选择被异议的候选人")
        from web.schemas import _clean

        for key in ("name", "contact", "facts"):
            _clean(values.get(key, ""))
        objections.lodge(session, campaign, int(raw_id), name=values.get("name", "")[:64],
                         contact=values.get("contact", "")[:128], facts=values.get("facts", "")[:5000])
    except (JingongError, ValueError) as exc:
        session.rollback()
        text = message_zh(exc) if isinstance(exc, JingongError) else "内容含有不允许的字符"
        code = status_of(exc) if isinstance(exc, JingongError) else 422
        return _notice(request, session, campaign, error=text, values=values, status_code=code)
    return RedirectResponse("/notice?done=1", 303)


@router.get("/commended")
def commended_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    return render(request, "public/commended.html", {"campaign": campaign,
                                                     "candidates": commended_rows(session, campaign),
                                                     "tracks": TRACK_LABELS_ZH})


@router.get("/public/photos/{nomination_id}")
def photo(nomination_id: NominationId, session: SessionDep, campaign: CampaignDep, settings: SettingsDep) -> Response:
    """A candidate's photo, only while they are on a public list."""
    if nomination_id > 2**31 - 1:
        raise NotFound("no such photo")
    visible = {c.id for c in deeds_rows(session, campaign)} | {c.id for c in notice_rows(session, campaign)} | {
        c.id for c in commended_rows(session, campaign)}
    n = session.get(Nomination, nomination_id)
    if n is None or nomination_id not in visible or n.photo_attachment_id is None:
        raise NotFound("no such photo", message_zh="没有该照片")
    attachment = session.get(Attachment, n.photo_attachment_id)
    if attachment is None:
        raise NotFound("no such photo", message_zh="没有该照片")
    from web.applicants import attachment_path

    path = attachment_path(settings.uploads_dir, attachment)
    if not path.exists():
        raise NotFound("photo file missing", message_zh="没有该照片")
    return FileResponse(path, media_type=attachment.content_type, headers={"Cache-Control": "public, max-age=300"})
