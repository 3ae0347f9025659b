"""The commendation decision (表彰决定) for the office: enter its 文号 and date, check the draft as
PDF or Word, publish it (then /commended shows the commended and the decision). Office admin only,
like opening and closing stages; every act is in the audit trail."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from accounts import service as accounts
from campaigns import decisions
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import StageName
from core.errors import JingongError, NotFound, ValidationFailed
from documents import notices
from web import flash
from web.deps import CampaignDep, CsrfChecked, CurrentUser, SessionDep, SpecDep, require
from web.errors import message_zh, status_of
from web.public_documents import DOCX, PDF, document
from web.templating import render

router = APIRouter(prefix="/committee/decision", include_in_schema=False)
MayDecide = Depends(require("stages"))


def _page(request: Request, session: Session, campaign: Campaign, *, error: str | None = None,
          values: dict[str, str] | None = None, status_code: int = 200) -> Response:
    record = decisions.get_decision(session, campaign.id or 0)
    doc = notices.decision(session, campaign, record=record)
    return render(request, "committee/decision.html", {
        "campaign": campaign, "record": record, "doc": doc, "error": error,
        "notice": campaigns.get_stage(session, campaign.id or 0, StageName.NOTICE),
        "values": values or ({"number": record.number, "decided_on": record.decided_on.isoformat()} if record else {}),
    }, status_code=status_code)


@router.get("", dependencies=[MayDecide])
def decision_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    return _page(request, session, campaign)


@router.post("", dependencies=[CsrfChecked, MayDecide])
async def decision_enter(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
                         spec: SpecDep) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip()[:200] for k in ("number", "decided_on")}
    try:
        try:
            decided_on = date.fromisoformat(values["decided_on"])
        except ValueError:
            raise ValidationFailed("bad date", message_zh="请填写决定日期（年-月-日）") from None
        decisions.enter_decision(session, campaign.id or 0, number=values["number"], decided_on=decided_on,
                                 actor=accounts.actor_of(user))
    except JingongError as exc:
        session.rollback()
        return _page(request, session, campaign, error=message_zh(exc), values=values, status_code=status_of(exc))
    return flash.redirect(request, "/committee/decision", "已保存表彰决定的文号和日期（尚未发布）")


@router.post("/publish", dependencies=[CsrfChecked, MayDecide])
def decision_publish(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
                     spec: SpecDep) -> Response:
    try:
        decisions.publish_decision(session, campaign.id or 0, actor=accounts.actor_of(user))
    except JingongError as exc:
        session.rollback()
        return _page(request, session, campaign, error=message_zh(exc), status_code=status_of(exc))
    return flash.redirect(request, "/committee/decision", "表彰决定已发布，表彰名单已在“表彰名单”页公布")


def _draft(session: Session, campaign: Campaign) -> notices.Decision:
    doc = notices.decision(session, campaign)
    if doc is None:
        raise NotFound("no decision entered", message_zh="请先录入表彰决定的文号和日期")
    return doc


@router.get("/draft.pdf", dependencies=[MayDecide])
def draft_pdf(session: SessionDep, campaign: CampaignDep) -> Response:
    return document(notices.decision_pdf(_draft(session, campaign)), PDF, f"{campaign.slug}-decision-draft.pdf")


@router.get("/draft.docx", dependencies=[MayDecide])
def draft_docx(session: SessionDep, campaign: CampaignDep) -> Response:
    return document(notices.decision_docx(_draft(session, campaign)), DOCX, f"{campaign.slug}-decision-draft.docx",
                    inline=False)
