"""Public pages: the shortlisted candidates' deeds, the public notice with the objection form,
the commendation list. Only name, unit, photo, deeds and awards; never phone or birth date."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from campaigns import decisions
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import StageName
from core.errors import JingongError, NotFound
from documents import notices
from nominations import public as public_lists
from objections import receipts as objection_receipts
from objections import service as objections
from web import flash
from web.deps import CampaignDep, SessionDep, SettingsDep, SpecDep
from web.errors import message_zh, status_of
from web.schemas import NominationId
from web.templating import render
from web.uploads import send_file

router = APIRouter(include_in_schema=False)


@router.get("/candidates")
def deeds_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    rows = public_lists.deeds_rows(session, campaign)
    voting = campaigns.get_stage(session, campaign.id or 0, StageName.VOTING)
    return render(request, "public/candidates.html", {"campaign": campaign, "candidates": rows, "voting": voting,
                                                      "voting_open": campaigns.is_open(voting)})


@router.get("/notice")
def notice_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    return _notice(request, session, campaign)


def _notice(request: Request, session: Session, campaign: Campaign, *, error: str | None = None,
            values: dict[str, str] | None = None, status_code: int = 200) -> Response:
    stage = campaigns.get_stage(session, campaign.id or 0, StageName.NOTICE)
    rows = public_lists.notice_rows(session, campaign)
    doc = notices.notice(session, campaign)
    return render(request, "public/notice.html", {
        "campaign": campaign, "candidates": [c for g in doc.groups for c in g.people], "stage": stage,
        "open": campaigns.is_open(stage) and bool(rows), "formal": notices.notice_fragment(doc), "notice": doc,
        "error": error, "values": values or {},
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
        lodged = objections.lodge(session, campaign, int(raw_id), name=values.get("name", "")[:64],
                                  contact=values.get("contact", "")[:128], facts=values.get("facts", "")[:5000])
    except (JingongError, ValueError) as exc:
        session.rollback()
        text = message_zh(exc) if isinstance(exc, JingongError) else "内容含有不允许的字符"
        code = status_of(exc) if isinstance(exc, JingongError) else 422
        return _notice(request, session, campaign, error=text, values=values, status_code=code)
    return flash.redirect(request, "/notice", "您的异议已收到，组委会办公室将依规核查处理。"
                          f"受理回执号：{lodged.receipt}（请妥善保存，可凭此号在本页查询受理情况和处理结果）")


@router.post("/notice/receipt")
async def objection_receipt(request: Request, session: SessionDep, campaign: CampaignDep) -> Response:
    """异议受理查询: received when, and the outcome; nothing else."""
    form = await request.form()
    code = form.get("receipt")
    found = objection_receipts.lookup(session, campaign.id or 0, code[:32] if isinstance(code, str) else "")
    return render(request, "public/objection_receipt.html", {"campaign": campaign, "found": found},
                  status_code=200 if found else 404)


@router.get("/commended")
def commended_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    record = decisions.published_decision(session, campaign.id or 0)
    doc = notices.decision(session, campaign, record=record) if record is not None else None
    return render(request, "public/commended.html", {
        "campaign": campaign, "decision": doc, "groups": doc.groups if doc else [],
        "expected": spec.publicity.decision_expected,
        "stage": campaigns.get_stage(session, campaign.id or 0, StageName.COMMENDATION)})


@router.get("/public/photos/{nomination_id}")
def photo(nomination_id: NominationId, session: SessionDep, campaign: CampaignDep, settings: SettingsDep) -> Response:
    """A candidate's photo, only while they are on a public list."""
    return send_file(public_lists.photo(session, campaign, nomination_id, settings.uploads_dir), public_photo=True)
