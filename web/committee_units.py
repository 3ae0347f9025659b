"""The office's list of nominating units: ``/committee/units``. Every unit with its quota use and
contact; the office adds a unit (an association), edits a unit's contact person, phone, email and
quota, and shows or regenerates the unit link. Office admins only; every change is audited
(``campaigns.units``). A refused form is shown again with what was typed.

The list is searched (name, contact person, phone, email) and filtered by category (镇街 for the
towns of 各镇街, 社会组织 for the associations...) and by quota use; the filter is the URL (a GET
form) and an edit returns to the same filtered list. About fifty units: filtered in memory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from accounts import service as accounts
from campaigns import units
from campaigns.models import Campaign
from core.errors import JingongError
from nominations import standing
from nominations.standing import UnitStanding
from web import flash
from web.deps import CampaignDep, CsrfChecked, CurrentUser, SessionDep, SettingsDep, require
from web.errors import message_zh, status_of
from web.schemas import MAX_ID, typed
from web.templating import render

router = APIRouter(prefix="/committee", include_in_schema=False)
AdminOnly = Depends(require("users"))
UnitId = Annotated[int, Path(ge=1, le=MAX_ID)]

#: the quota-use filter: ``only=`` in the URL
USE_LABELS = {"nominated": "已有推荐", "over": "超出名额", "none": "尚无推荐"}


@dataclass(frozen=True)
class UnitFilter:
    """What the office asked of the list: words to find, a category, a quota use. Lenient like
    the other committee filters: control characters dropped, an unknown choice ignored."""

    text: str = ""
    category: str = ""
    use: str = ""

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> UnitFilter:
        def text(key: str, limit: int) -> str:
            raw = params.get(key)
            return typed(raw if isinstance(raw, str) else None, limit)

        use = text("only", 16)
        return cls(text("q", 100), text("category", 50), use if use in USE_LABELS else "")

    @property
    def active(self) -> bool:
        return bool(self.text or self.category or self.use)

    def query(self) -> str:
        return urlencode({k: v for k, v in (("q", self.text), ("category", self.category), ("only", self.use))
                          if v})

    def keeps(self, row: UnitStanding) -> bool:
        u = row.unit
        if self.category and u.category != self.category:
            return False
        if (self.use == "nominated" and not row.used) or (self.use == "over" and not row.over) or (
                self.use == "none" and row.used):
            return False
        phone = u.phone or ""
        seen = " ".join([u.name, u.category, u.group or "", u.contact_person or "", phone, re.sub(r"\D", "", phone),
                         u.contact_email or ""]).lower()
        return all(word in seen for word in self.text.lower().split())


def _back(found: UnitFilter, unit_id: int) -> str:
    query = found.query()
    return "/committee/units" + (f"?{query}" if query else "") + f"#unit-{unit_id}"


def _filter_of_form(form: Any) -> UnitFilter:
    """The list's filter a form on it carries back (a query string), so an edit returns to it."""
    raw = form.get("filter")
    return UnitFilter.of(QueryParams(raw[:400] if isinstance(raw, str) else ""))


def _page(request: Request, session: Any, campaign: Campaign, settings: Any, *, error: str | None = None,
          typed: dict[str, str] | None = None, editing: int | None = None, status_code: int = 200,
          found: UnitFilter | None = None) -> Response:
    found = found or UnitFilter()
    every = standing.standings(session, campaign.id or 0)
    # the unit being edited stays in sight even if the edit took it out of the filter
    rows = [s for s in every if s.unit.id == editing or found.keeps(s)]
    base = settings.public_base_url.rstrip("/")
    links = {s.unit.id: f"{base}/unit/{units.ensure_link(session, s.unit)}" for s in rows}
    categories = sorted({s.unit.category for s in every} | {"社会组织"})
    groups: dict[str, str] = {}
    for s in every:  # the plan's order: 重点行业部门, 园区, 镇街 (各镇街), then what the office added
        if s.unit.group or s.unit.category not in groups:
            groups[s.unit.category] = f"{s.unit.category}（{s.unit.group}）" if s.unit.group else s.unit.category
    groups.setdefault("社会组织", "社会组织（行业协会等）")
    response = render(request, "committee/units.html", {
        "rows": rows, "links": links, "categories": categories, "error": error, "typed": typed or {},
        "editing": editing, "over": sum(1 for s in every if s.over), "total": len(every), "found": found,
        "groups": groups, "uses": USE_LABELS,
    }, status_code=status_code)
    response.headers["Cache-Control"] = "private, no-store"  # the unit links are credentials
    return response


def _form_values(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k not in {"csrf_token", "filter"}}


@router.get("/units", dependencies=[AdminOnly])
def units_page(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
               settings: SettingsDep) -> Response:
    return _page(request, session, campaign, settings, found=UnitFilter.of(request.query_params))


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
    form = await request.form()
    typed, found = _form_values(form), _filter_of_form(form)
    unit = units.get_unit(session, campaign.id or 0, unit_id)
    try:
        changed = units.edit_unit(session, unit, typed, actor=accounts.actor_of(user))
    except JingongError as exc:
        session.rollback()
        return _page(request, session, campaign, settings, error=f"未能保存“{unit.name}”：" + message_zh(exc),
                     typed=typed, editing=unit.id, status_code=status_of(exc), found=found)
    text = f"已保存：{unit.name}" if changed else f"未作修改：{unit.name}"
    return flash.redirect(request, _back(found, unit.id or 0), text)


@router.post("/units/{unit_id}/link", dependencies=[CsrfChecked, AdminOnly])
async def units_new_link(unit_id: UnitId, request: Request, user: CurrentUser, session: SessionDep,
                   campaign: CampaignDep) -> Response:
    unit = units.get_unit(session, campaign.id or 0, unit_id)
    found = _filter_of_form(await request.form())
    units.regenerate_link(session, unit, actor=accounts.actor_of(user))
    return flash.redirect(request, _back(found, unit.id or 0), f"已重新生成“{unit.name}”的单位链接，原链接即时失效")

