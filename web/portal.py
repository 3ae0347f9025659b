"""The applicant portal (Chinese pages): both forms, drafts, the status page by its link,
submission, evidence uploads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from campaigns import service as campaigns
from core.errors import JingongError, NotFound
from nominations import attachments, drafts
from nominations import service as nominations
from nominations.choices import EDUCATION_LEVELS, ETHNICITIES, POLITICAL_STATUSES
from nominations.models import AttachmentKind, NominationKind
from objections import service as objections
from web import flash
from web.deps import CampaignDep, SessionDep, SettingsDep, SpecDep
from web.errors import message_zh, status_of
from web.forms import FIELD_LABELS, field_errors, nomination_changes
from web.schemas import AttachmentId, ObjectionId
from web.templating import render
from web.uploads import send_file, store_upload
from workflow import applicants

router = APIRouter(include_in_schema=False)

# shown once on the status page after the act (web/flash.py), never carried in its link
SAVED = "草稿已保存。请收藏本页链接，以便随时回来继续填写。"
SUBMITTED = "申报已提交，谢谢！"

ATTACHMENT_LABELS_ZH = {
    AttachmentKind.PHOTO.value: "一寸近期免冠照片",
    AttachmentKind.CERTIFICATE.value: "职业资格证书",
    AttachmentKind.AWARD.value: "获奖情况证明",
    AttachmentKind.ACHIEVEMENT.value: "主要技术成果展示（图片、PPT、视频）",
    AttachmentKind.OTHER.value: "其他材料",
}


def form_context(session: Any, campaign: Any, spec: Any) -> dict[str, Any]:
    return {
        "units": campaigns.list_units(session, campaign.id or 0),
        "grades": spec.technical_grades,
        "conditions": spec.priority_conditions,
        "labels": FIELD_LABELS,
        "attachment_labels": ATTACHMENT_LABELS_ZH,
        "deeds_max": spec.rules.deeds_max_chars,
        "choices": {"ethnicity": ETHNICITIES, "education": EDUCATION_LEVELS, "political_status": POLITICAL_STATUSES},
    }


def _not_ready(nomination: Any, spec: Any) -> dict[str, str]:
    """What keeps a saved draft from being submitted, field → message (the photo included)."""
    problems = nominations.form_problems(nomination, spec) + nominations.photo_problems(nomination)
    return {p.field: p.message_zh for p in problems}


@router.get("/")
def home(request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    windows = campaigns.calendar(session, campaign)
    deadline = drafts.deadline_of(session, campaign, spec)
    return render(request, "home.html", {"campaign": campaign, "windows": windows, "deadline": deadline})


def _kind(raw: str) -> NominationKind:
    try:
        return NominationKind(raw)
    except ValueError:
        raise NotFound(f"no form {raw!r}; forms: unit, self", message_zh="没有这种申报表") from None


@router.get("/apply/{kind}")
def apply_form(kind: str, request: Request, session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    form_kind = _kind(kind)
    deadline = drafts.deadline_of(session, campaign, spec)
    return render(request, "apply.html", {**form_context(session, campaign, spec), "kind": form_kind,
                                           "values": {}, "deadline": deadline})


@router.post("/apply/{kind}")
async def apply_post(kind: str, request: Request, session: SessionDep, campaign: CampaignDep,
                     spec: SpecDep) -> Response:
    form_kind = _kind(kind)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        changes = nomination_changes(form)
        nomination = drafts.create(session, campaign, spec, changes | {"kind": form_kind})
    except JingongError as exc:
        deadline = drafts.deadline_of(session, campaign, spec)
        session.rollback()
        return render(request, "apply.html", {
            **form_context(session, campaign, spec), "kind": form_kind, "values": values,
            "checked": form.getlist("priority_conditions"), "error": message_zh(exc), "errors": field_errors(exc),
            "deadline": deadline,
        }, status_code=status_of(exc))
    if form.get("action") == "submit":
        if _not_ready(nomination, spec):  # a new form has no photo yet: saved, then the photo
            return flash.redirect(request, f"/status/{nomination.token}",
                                  "草稿已保存，还不能提交：请按下方提示上传照片、补全内容后再提交。", "error")
        try:
            applicants.submit(session, nomination)
        except JingongError as exc:  # refused before writing: the draft is still kept
            return flash.redirect(request, f"/status/{nomination.token}", message_zh(exc), "error")
        return flash.redirect(request, f"/status/{nomination.token}", SUBMITTED)
    return flash.redirect(request, f"/status/{nomination.token}", SAVED)


def _status_page(request: Request, session: Any, nomination: Any, campaign: Any, spec: Any, *,
                 error: str | None = None, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                 error_title: str | None = None, notice: str | None = None, status_code: int = 200) -> Response:
    view = applicants.status_view(session, nomination, spec)
    return render(request, "status.html", {
        **form_context(session, campaign, spec), **view, "kind": NominationKind(nomination.kind),
        "error": error, "errors": errors or {}, "error_title": error_title, "values": values, "notice": notice,
        "objections": objections.of_nomination(session, nomination.id or 0),
    }, status_code=status_code)


@router.get("/status/{token}")
def status_page(token: str, request: Request, session: SessionDep, campaign: CampaignDep,
                spec: SpecDep) -> Response:
    nomination = nominations.get_by_token(session, token)
    return _status_page(request, session, nomination, campaign, spec)


@router.post("/status/{token}")
async def status_post(token: str, request: Request, session: SessionDep, campaign: CampaignDep,
                      spec: SpecDep) -> Response:
    nomination = nominations.get_by_token(session, token)
    form = await request.form()
    try:
        drafts.update(session, nomination, spec, nomination_changes(form))
    except JingongError as exc:  # nothing saved: the page shows what was typed, each error at its field
        session.rollback()
        session.refresh(nomination)
        typed: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        return _status_page(request, session, nomination, campaign, spec, error=message_zh(exc),
                            errors=field_errors(exc), values=typed, status_code=status_of(exc))
    if form.get("action") == "submit":
        not_ready = _not_ready(nomination, spec)
        if not_ready:
            return _status_page(request, session, nomination, campaign, spec, errors=not_ready, status_code=422,
                                error_title="草稿已保存，但还不能提交。请完成以下内容：")
        try:
            applicants.submit(session, nomination)
        except JingongError as exc:  # refused before writing: the changes are still saved
            return _status_page(request, session, nomination, campaign, spec,
                                error="草稿已保存，但未能提交：" + message_zh(exc), status_code=status_of(exc))
        return flash.redirect(request, f"/status/{token}", SUBMITTED)
    return flash.redirect(request, f"/status/{token}", SAVED)


@router.post("/status/{token}/withdraw")
async def withdraw_post(token: str, request: Request, session: SessionDep) -> Response:
    nomination = nominations.get_by_token(session, token)
    form = await request.form()
    reason = form.get("reason")
    applicants.withdraw(session, nomination, reason if isinstance(reason, str) else None)
    return flash.redirect(request, f"/status/{token}", "申报已撤回。")


@router.post("/status/{token}/objections/{objection_id}/reply")
async def reply_post(token: str, objection_id: ObjectionId, request: Request, session: SessionDep) -> Response:
    nomination = nominations.get_by_token(session, token)
    form = await request.form()
    text = form.get("reply")
    objections.reply(session, nomination.id or 0, objection_id, text if isinstance(text, str) else "")
    return flash.redirect(request, f"/status/{token}", "答复已提交。")


@router.post("/status/{token}/attachments")
async def upload_post(token: str, request: Request) -> Response:
    await store_upload(request, token)
    return flash.redirect(request, f"/status/{token}#attachments", "材料已上传。")


@router.get("/status/{token}/attachments/{attachment_id}")
def attachment_get(token: str, attachment_id: AttachmentId, session: SessionDep, settings: SettingsDep) -> Response:
    nomination = nominations.get_by_token(session, token)
    return send_file(attachments.fetch(session, settings.uploads_dir, attachment_id, nomination=nomination))
