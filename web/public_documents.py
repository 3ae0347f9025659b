"""The formal public documents: the 公示 as PDF, the commendation decision (PDF and Word) once the
office publishes it, and a page per commended person for the promotion stage (集中宣传)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from campaigns import decisions
from campaigns.models import Campaign
from core.errors import NotFound
from documents import notices
from nominations import public as public_lists
from web.deps import CampaignDep, SessionDep, SpecDep
from web.schemas import NominationId
from web.templating import render

router = APIRouter(include_in_schema=False)

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def document(data: bytes, media_type: str, filename: str, *, inline: bool = True) -> Response:
    disposition = "inline" if inline else "attachment"
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f"{disposition}; filename=\"{filename}\"; filename*=UTF-8''{filename}"})


@router.get("/notice.pdf")
def notice_pdf(session: SessionDep, campaign: CampaignDep) -> Response:
    doc = notices.notice(session, campaign)
    return document(notices.notice_pdf(doc), PDF, f"{campaign.slug}-notice.pdf")


def _published_decision(session: Session, campaign: Campaign) -> notices.Decision:
    record = decisions.published_decision(session, campaign.id or 0)
    doc = notices.decision(session, campaign, record=record) if record is not None else None
    if doc is None:
        raise NotFound("the decision is not published", message_zh="表彰决定尚未发布")
    return doc


@router.get("/commended/decision.pdf")
def decision_pdf(session: SessionDep, campaign: CampaignDep) -> Response:
    return document(notices.decision_pdf(_published_decision(session, campaign)), PDF,
                    f"{campaign.slug}-decision.pdf")


@router.get("/commended/decision.docx")
def decision_docx(session: SessionDep, campaign: CampaignDep) -> Response:
    return document(notices.decision_docx(_published_decision(session, campaign)), DOCX,
                    f"{campaign.slug}-decision.docx", inline=False)


@router.get("/commended/{nomination_id}")
def winner_page(nomination_id: NominationId, request: Request, session: SessionDep, campaign: CampaignDep,
                spec: SpecDep) -> Response:
    person = public_lists.winner(session, campaign, nomination_id)
    record = decisions.published_decision(session, campaign.id or 0)
    return render(request, "public/winner.html", {
        "campaign": campaign, "person": person, "decision": record,
        "award_line": notices.award_line(spec, notices.Track(person.track or "main")),
        "url": str(request.url), "base": str(request.base_url).rstrip("/"),
    })
