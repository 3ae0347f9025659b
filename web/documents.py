"""Downloads of the paper: a nomination's filled form (the applicant by the status link, the
committee by the nomination's id), the blank forms 附件1–3 and the notice (public, cacheable)."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from campaigns import units
from core.errors import NotFound
from documents import forms, notice
from nominations import service as nominations
from nominations.models import Nomination
from web.deps import CampaignDep, CurrentUser, SessionDep, SettingsDep, SpecDep
from web.schemas import NominationId

router = APIRouter(include_in_schema=False)
#: the public documents change only with the campaign file: a day in any cache, revalidated by ETag
PUBLIC_CACHE = "public, max-age=86400"
BLANKS = {"plan", "recommend", "self"}


def content_disposition(filename: str, fallback: str) -> str:
    """``attachment`` with the Chinese name for every browser (RFC 6266/5987) and an ASCII one for old ones."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download(content: bytes, media_type: str, filename: str, fallback: str, *,
             request: Request | None = None) -> Response:
    """A file to save; with ``request`` a public one: an ETag from its bytes, 304 when the browser has it."""
    headers = {"Content-Disposition": content_disposition(filename, fallback)}
    if request is None:
        headers["Cache-Control"] = "private, no-store"  # a person's form: no shared cache keeps it
        return Response(content, media_type=media_type, headers=headers)
    etag = '"' + hashlib.blake2b(content, digest_size=12).hexdigest() + '"'
    headers |= {"ETag": etag, "Cache-Control": PUBLIC_CACHE}
    tags = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": PUBLIC_CACHE})
    return Response(content, media_type=media_type, headers=headers)


@router.get("/status/{token}/form.{fmt}")
def applicant_form(token: str, fmt: str, session: SessionDep, settings: SettingsDep) -> Response:
    nomination = nominations.get_by_token(session, token)
    content, media_type, filename = forms.render_form(session, nomination.id or 0, _fmt(fmt), settings)
    return download(content, media_type, filename, f"form-{nomination.id}.{fmt}")


@router.get("/committee/nominations/{nomination_id}/form.{fmt}")
def committee_form(nomination_id: NominationId, fmt: str, user: CurrentUser, session: SessionDep,
                   campaign: CampaignDep, settings: SettingsDep) -> Response:
    nomination = nominations.get_in_campaign(session, campaign.id or 0, nomination_id)
    content, media_type, filename = forms.render_form(session, nomination.id or 0, _fmt(fmt), settings)
    return download(content, media_type, filename, f"form-{nomination.id}.{fmt}")


@router.get("/unit/{token}/nominations/{nomination_id}/form.{fmt}")
def unit_form(token: str, nomination_id: NominationId, fmt: str, session: SessionDep,
              settings: SettingsDep) -> Response:
    """The unit's contact downloads the form of one of the unit's own nominations (by the unit link)."""
    unit = units.find_by_link(session, token)
    nomination = session.get(Nomination, nomination_id)
    if nomination is None or nomination.unit_id != unit.id:
        raise NotFound("no such nomination of this unit", message_zh="本单位没有这份推荐")
    content, media_type, filename = forms.render_form(session, nomination_id, _fmt(fmt), settings)
    return download(content, media_type, filename, f"form-{nomination_id}.{fmt}")


@router.get("/documents/{name}.{fmt}")
def public_document(name: str, fmt: str, request: Request, spec: SpecDep) -> Response:
    if name == "notice":
        content, media_type, filename = notice.render_notice(spec, fmt)
    elif name in BLANKS:
        content, media_type, filename = forms.render_blank(name, _fmt(fmt), spec)  # type: ignore[arg-type]
    else:
        raise NotFound(f"no document {name!r}", message_zh="没有这个文件")
    return download(content, media_type, filename, f"{spec.slug}-{name}.{fmt}", request=request)


def _fmt(fmt: str) -> forms.Format:
    if fmt == "docx":
        return "docx"
    if fmt == "pdf":
        return "pdf"
    raise NotFound(f"unknown format {fmt!r}", message_zh="没有这种格式的文件（可下载 .docx 或 .pdf）")
