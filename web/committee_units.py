"""The office's list of nominating units: ``/committee/units``. Every unit with its quota use and
contact; the office adds a unit (an association), edits a unit's contact person, phone, email and
quota, and shows or regenerates the unit link. Office admins only; every change is audited
(``campaigns.units``). A refused form is shown again with what was typed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from accounts import service as accounts
from campaigns import units
from campaigns.models import Campaign
from core.errors import JingongError
from nominations import standing
from web import flash
from web.deps import CampaignDep, CsrfChecked, CurrentUser, SessionDep, SettingsDep, require
from web.errors import message_zh, status_of
from web.schemas import MAX_ID
from web.templating import render

router = APIRouter(prefix="/committee", include_in_schema=False)
AdminOnly = Depends(require("users"))
UnitId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _page(request: Request, session: Any, campaign: Campaign, settings: Any, *, error: str | None = None,
          typed: dict[str, str] | None = None, editing: int | None = None, status_code: int = 200) -> Response:
    rows = standing.standings(session, campaign.id or 0)
    base = settings.public_base_url.rstrip("/")
    links = {s.unit.id: f"{base}/unit/{units.ensure_link(session, s.unit)}" for s in rows}
    categories = sorted({s.unit.category for s in rows} | {"社会组织"})
    response = render(request, "committee/units.html", {
        "rows": rows, "links": links, "categories": categories, "error": error, "typed": typed or {},
        "editing": editing, "over": sum(1 for s in rows if s.over),
    }, status_code=status_code)
    response.headers["Cache-Control"] = "private, no-store"  # the unit links are credentials
    return response


def _form_values(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


@router.get("/units", dependencies=[AdminOnly])
def units_page(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
               settings: SettingsDep) -> Response:
    return _page(request, session, campaign, settings)


@router.post("/units", dependencies=[CsrfChecked, AdminOnly])
async def units_add(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
                    settings: SettingsDep) -> Response:
    typed = _form_values(await request.form())
    try:
        unit = units.add_unit(session, campaign.id or 0, typed, actor=accounts.actor_of(user))
    except JingongError as exc:
        session.rollback()
        return _page(request, session, campaign, settings, error="未能新增：" + message_zh(exc), typed=typed,
                     status_code=status_of(exc))
    return flash.redirect(request, f"/committee/units#unit-{unit.id}", f"已新增推荐单位：{unit.name}")


@router.post("/units/{unit_id}", dependencies=[CsrfChecked, AdminOnly])
async def units_edit(unit_id: UnitId, request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
                     settings: SettingsDep) -> Response:
    typed = _form_values(await request.form())
    unit = units.get_unit(session, campaign.id or 0, unit_id)
    try:
        changed = units.edit_unit(session, unit, typed, actor=accounts.actor_of(user))
    except JingongError as exc:
        session.rollback()
        return _page(request, session, campaign, settings, error=f"未能保存“{unit.name}”：" + message_zh(exc),
                     typed=typed, editing=unit.id, status_code=status_of(exc))
    text = f"已保存：{unit.name}" if changed else f"未作修改：{unit.name}"
    return flash.redirect(request, f"/committee/units#unit-{unit.id}", text)


@router.post("/units/{unit_id}/link", dependencies=[CsrfChecked, AdminOnly])
def units_new_link(unit_id: UnitId, request: Request, user: CurrentUser, session: SessionDep,
                   campaign: CampaignDep) -> Response:
    unit = units.get_unit(session, campaign.id or 0, unit_id)
    units.regenerate_link(session, unit, actor=accounts.actor_of(user))
    return flash.redirect(request, f"/committee/units#unit-{unit.id}",
                          f"已重新生成“{unit.name}”的单位链接，原链接即时失效")

