"""Public pages: the shortlisted candidates' deeds, the public notice with the objection form,
the commendation list. Only name, unit, photo, deeds and awards; never phone or birth date."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response
from sqlmodel import Session

from campaigns import decisions
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import StageName
from core.errors import JingongError, NotFound, ValidationFailed
from documents import notices
from nominations import photos
from nominations import public as public_lists
from objections import receipts as objection_receipts
from objections import service as objections
from web import flash, posters
from web.deps import CampaignDep, SessionDep, SettingsDep, SpecDep
from web.errors import message_zh, status_of
from web.schemas import NominationId
from web.templating import render
from web.uploads import FILE_CSP, send_file

router = APIRouter(include_in_schema=False)


@router.get("/candidates")
def deeds_page(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    rows = public_lists.deeds_rows(session, campaign)
    voting = campaigns.get_stage(session, campaign.id or 0, StageName.VOTING)
    return render(request, "public/candidates.html", {"campaign": campaign, "candidates": rows, "voting": voting,
                                                      "voting_open": campaigns.is_open(voting)})


@router.get("/candidates/{number}")
def candidate_page(number: Annotated[int, Path(ge=1, le=9999)], request: Request, session: SessionDep,
                   campaign: CampaignDep, settings: SettingsDep) -> Response:
    """One candidate by 编号: photo, deeds, the vote button, and the tags a chat app's link card reads."""
    candidate = public_lists.by_number(session, campaign, number)
    voting = campaigns.get_stage(session, campaign.id or 0, StageName.VOTING)
    base = settings.public_base_url.rstrip("/")
    return render(request, "public/candidate.html", {
        "campaign": campaign, "c": candidate, "voting": voting, "voting_open": campaigns.is_open(voting),
        "url": f"{base}/candidates/{number}", "base": base,
    })


@router.get("/candidates/{number}/poster.png")
def candidate_poster(number: Annotated[int, Path(ge=1, le=9999)], session: SessionDep, campaign: CampaignDep,
                     settings: SettingsDep) -> Response:
    """A poster to share in a chat: campaign, photo, name, 编号, a QR code of the candidate's page."""
    candidate = public_lists.by_number(session, campaign, number)
    photo_path = None
    if candidate.has_photo:
        try:
            photo_path = public_lists.photo(session, campaign, candidate.id, settings.uploads_dir).path
        except NotFound:
            photo_path = None
    url = f"{settings.public_base_url.rstrip('/')}/candidates/{number}"
    png = posters.poster_png(title=campaign.name, name=candidate.name, number=number, employer=candidate.employer,
                             url=url, photo=photo_path)
    return Response(png, media_type="image/png", headers={
        "Cache-Control": "public, max-age=300", "Content-Security-Policy": FILE_CSP,
        "Content-Disposition": f'inline; filename="poster-{number}.png"'})


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
def photo(nomination_id: NominationId, session: SessionDep, campaign: CampaignDep, settings: SettingsDep,
          w: int | None = None) -> Response:
    """A candidate's photo, only while they are on a public list; ``?w=120|240|480`` a copy at
    most that wide, resized here once (the phone list loads a few KB per candidate)."""
    stored = public_lists.photo(session, campaign, nomination_id, settings.uploads_dir)
    if w is None:
        return send_file(stored, public_photo=True)
    if w not in photos.THUMB_WIDTHS:
        raise ValidationFailed(f"w must be one of {photos.THUMB_WIDTHS}", message_zh="图片尺寸不支持")
    thumb = photos.thumbnail(stored.path, settings.uploads_dir / "thumbs" / f"{stored.attachment.id}-{w}.jpg", w)
    return FileResponse(thumb, media_type="image/jpeg", content_disposition_type="inline",
                        filename=f"photo-{stored.attachment.id}-{w}.jpg",
                        headers={"Cache-Control": "public, max-age=300", "Content-Security-Policy": FILE_CSP})
