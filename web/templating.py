"""Jinja2 pages in Chinese, autoescaped: every text a user typed is shown as text."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from accounts.service import ROLE_LABELS_ZH
from core import clock
from core.beijing import BEIJING, beijing_text, beijing_until_text
from nominations.states import STATE_LABELS_ZH, State
from notifications.context import TRACK_LABELS_ZH
from web import flash
from workflow.machine import EVENT_LABELS_ZH, Event
from workflow.trail import actor_zh as trail_actor_zh

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

KIND_LABELS_ZH = {"unit": "单位推荐（附件2）", "self": "个人自荐（附件3）"}


OBJECTION_STATUS_ZH = {"open": "待处理", "upheld": "异议成立", "dismissed": "异议不成立"}
MAIL_STATUS_ZH = {"held": "已暂停", "queued": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败"}


def bjt(value: datetime | None) -> str:
    """The one format of an instant on committee pages: Beijing wall-clock, e.g. 2021-05-31 18:00."""
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if value else ""


def date_text(value: date | None) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else ""


def iso_local(value: datetime | None) -> str:
    return value.astimezone(BEIJING).isoformat() if value else ""


def _state_zh(value: Any) -> str:
    try:
        return STATE_LABELS_ZH[State(value)]
    except ValueError:
        return str(value)


def _event_zh(value: Any) -> str:
    try:
        return EVENT_LABELS_ZH[Event(value)]
    except ValueError:
        return str(value)


def _role_zh(value: Any) -> str:
    from accounts.models import Role

    try:
        return ROLE_LABELS_ZH[Role(value)]
    except ValueError:
        return str(value)


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
env = templates.env
env.autoescape = True  # every template, whatever its suffix
env.filters.update(
    bj=beijing_text,
    bjt=bjt,
    mail_status_zh=lambda v: MAIL_STATUS_ZH.get(str(v), str(v)),
    objection_status_zh=lambda v: OBJECTION_STATUS_ZH.get(str(v), str(v)),
    actor_zh=lambda v, names=None: trail_actor_zh(str(v), names or {}),
    bj_until=beijing_until_text,
    bjs=lambda v: beijing_text(v, seconds=True),
    ymd=date_text,
    iso_local=iso_local,
    state_zh=_state_zh,
    event_zh=_event_zh,
    role_zh=_role_zh,
    track_zh=lambda v: TRACK_LABELS_ZH.get(v or "", ""),
    kind_zh=lambda v: KIND_LABELS_ZH.get(str(v), str(v)),
)


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    cookie = request.scope.get("session") or {}  # the signed session cookie's contents
    # the message an act left for this page (web/flash.py), shown once by base.html
    ctx: dict[str, Any] = {"now": clock.now(), "csrf_token": cookie.get("csrf", ""), "flash": flash.pop(request)}
    ctx.update(context or {})
    ctx.setdefault("user", getattr(request.state, "user", None))
    spec = ctx.setdefault("spec", getattr(request.state, "spec", None))
    ctx.setdefault("office", spec.office if spec is not None else None)
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
