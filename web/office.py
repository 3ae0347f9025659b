"""The office's pages: the dashboard (the campaign at a glance), the outbox (filters, paging, a
preview as the recipient sees it, hold / release / resend) and the audit trail (names, paging,
filters; its Excel export lives in web/exports.py)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from accounts import service as accounts
from accounts.models import Role
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import StageName
from core import clock
from core.beijing import BEIJING
from core.errors import InvalidTransition, JingongError, ValidationFailed
from nominations import progress
from nominations import service as nominations
from nominations.states import State
from notifications import outbox
from notifications.models import MailStatus, MailTemplate, OutboxMail
from objections import service as objections
from objections.models import ObjectionStatus
from stages import review as bring_back
from stages import service as stages
from stages.models import StepKind
from web import flash
from web.deps import CampaignDep, CsrfChecked, CurrentUser, SessionDep, require
from web.errors import message_zh
from web.schemas import MailId, typed
from web.templating import MAIL_STATUS_ZH, render
from workflow import bulk, shortfall, trail
from workflow.machine import EVENT_LABELS_ZH, Event

router = APIRouter(prefix="/committee", include_in_schema=False)
MailOnly = Depends(require("mail"))
MAIL_PER_PAGE = 50
AUDIT_PER_PAGE = 100
#: each kind of mail in words: a state change's mail is named by its event, the others here
MAIL_TEMPLATE_ZH = {
    **{event.value: EVENT_LABELS_ZH[event] for event in Event},
    "stage_opened": "阶段开始", "stage_closed": "阶段结束", "deadline_reminder": "截止提醒",
    "voting_open": "投票开始", "objection_received": "收到异议（组委会）", "committee_alert": "提醒组委会",
    "vote_code": "投票验证码", "objection_ack": "异议受理回执", "unit_change": "推荐单位通知", "test": "测试邮件",
}


def page_of(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) < 6 and int(raw) > 0 else 1


@dataclass(frozen=True)
class Pager:
    """Page links that keep the filters."""

    page: int
    pages: int
    total: int
    params: dict[str, str]

    def url(self, page: int) -> str:
        return "?" + urlencode({**{k: v for k, v in self.params.items() if v and k != "p"}, "p": str(page)})


def pager(page: int, per_page: int, total: int, params: dict[str, str]) -> Pager:
    return Pager(page, max(1, math.ceil(total / per_page)), total, params)


# --- the dashboard ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaBar:
    unit_id: int
    name: str
    category: str
    quota: int
    used: int

    @property
    def width(self) -> int:  # of 100, the quota's share drawn full at 100
        return min(100, round(100 * self.used / self.quota)) if self.quota else (100 if self.used else 0)

    @property
    def over(self) -> bool:
        return self.used > self.quota


def quota_bars(session: Session, campaign: Campaign) -> list[QuotaBar]:
    usage = nominations.unit_usage(session, campaign.id or 0)
    return [QuotaBar(u.id or 0, u.name, u.category, u.quota, usage.get(u.id or 0, 0))
            for u in campaigns.list_units(session, campaign.id or 0)]


@dataclass(frozen=True)
class DayBar:
    day: date
    count: int
    x: float
    y: float
    height: float
    label: bool  # whether the day is written under the axis


@dataclass(frozen=True)
class DayChart:
    """Submissions per Beijing day over the nomination window, as SVG geometry."""

    width: int
    height: int
    left: int
    bottom: int
    bar_width: float
    top_count: int
    bars: list[DayBar]
    deadline: datetime
    deadline_x: float
    total: int
    now_x: float | None  # where now is, while it is inside the chart


CHART_W, CHART_H, CHART_LEFT, CHART_BOTTOM, CHART_TOP = 720, 220, 36, 30, 24


def day_chart(session: Session, campaign: Campaign) -> DayChart | None:
    window = next((s for s in campaigns.list_stages(session, campaign.id or 0) if s.name == StageName.NOMINATION), None)
    if window is None:
        return None
    first, deadline = window.opens_at.astimezone(BEIJING), window.closes_at.astimezone(BEIJING)
    per_day = Counter(at.astimezone(BEIJING).date() for at in progress.submitted_instants(session, campaign.id or 0))
    last = max([deadline.date(), *per_day]) if per_day else deadline.date()
    # from the first submission (the empty weeks after the opening say nothing), two weeks at least
    start = min([*per_day, deadline.date() - timedelta(days=14)]) if per_day else first.date()
    days = [start + timedelta(days=i) for i in range((last - start).days + 1)]
    top = max(per_day.values(), default=0)
    top_count = max(4, math.ceil(top / 4) * 4)  # four even gridlines
    plot_w, plot_h = CHART_W - CHART_LEFT - 8, CHART_H - CHART_BOTTOM - CHART_TOP
    slot = plot_w / len(days)
    step = max(1, math.ceil(len(days) / 10))  # about ten dates under the axis
    bars = []
    for i, day in enumerate(days):
        height = plot_h * per_day.get(day, 0) / top_count
        bars.append(DayBar(day, per_day.get(day, 0), CHART_LEFT + i * slot + slot * 0.15,
                           CHART_TOP + plot_h - height, height, i % step == 0 or day == deadline.date()))

    def x_of(at: datetime) -> float:
        local = at.astimezone(BEIJING)
        into_day = (local - datetime.combine(local.date(), datetime.min.time(), BEIJING)).total_seconds() / 86400
        return CHART_LEFT + ((local.date() - start).days + into_day) * slot

    now = clock.now()
    inside = start <= now.astimezone(BEIJING).date() <= last and now < deadline
    return DayChart(CHART_W, CHART_H, CHART_LEFT, CHART_BOTTOM, slot * 0.7, top_count, bars, deadline, x_of(deadline),
                    sum(per_day.values()), x_of(now) if inside else None)


@dataclass(frozen=True)
class Todo:
    text: str
    link: str
    count: int


def todos(session: Session, campaign: Campaign, role: Role) -> list[Todo]:
    """What needs doing now, each with the page where it is done (blocked steps have their own block)."""
    cid = campaign.id or 0
    counts = nominations.count_by_state(session, cid)
    items = [
        Todo("件申报已提交、待资格审核", "/committee/screening?state=submitted", counts.get(State.SUBMITTED, 0)),
        Todo("件异议待处理", "/committee/objections",
             len(objections.list_objections(session, cid, ObjectionStatus.OPEN))),
        Todo("名候选人异议核查中", "/committee/review", counts.get(State.ON_HOLD, 0)),
    ]
    if accounts.may(role, "mail"):
        mail = outbox.counts_by_status(session)
        items += [Todo("封邮件已暂停、待公布或放行", "/committee/mail?status=held", mail[MailStatus.HELD]),
                  Todo("封邮件发送失败", "/committee/mail?status=failed", mail[MailStatus.FAILED])]
    return [t for t in items if t.count]


def step_what(step: stages.UpcomingStep) -> str:
    if step.kind is StepKind.REMINDER:
        return f"{step.title}{step.key.rsplit(':', 1)[-1]}天截止提醒"
    return f"{step.title}{stages.STEP_LABELS_ZH[step.kind]}"


def _review_blocked(blocked: list[stages.UpcomingStep]) -> bool:
    return any(s.stage == StageName.REVIEW and s.kind is StepKind.CLOSE for s in blocked)


@router.get("")
def dashboard(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    cid, role = campaign.id or 0, Role(user.role)
    blocked = stages.blocked_steps(session, cid)
    bars = quota_bars(session, campaign)
    return render(request, "committee/dashboard.html", {
        "campaign": campaign, "windows": campaigns.calendar(session, campaign),
        "upcoming": [(s, step_what(s)) for s in stages.upcoming(session, cid)[:8]], "blocked": blocked,
        "shortfall": shortfall.shortage(session, cid) if _review_blocked(blocked) else None,
        "next_in_line": bring_back.next_in_line(session, cid) if _review_blocked(blocked) else None,
        "may_stages": accounts.may(role, "stages"), "todos": todos(session, campaign, role),
        "bars": bars, "quota_total": sum(b.quota for b in bars), "used_total": sum(b.used for b in bars),
        "chart": day_chart(session, campaign), "outbox_held": outbox.outbox_held(session),
        "may_mail": accounts.may(role, "mail"),
    })


# --- the outbox ----------------------------------------------------------------------------------


def why_held(session: Session, mail: OutboxMail) -> str:
    """Why a held mail waits, in Chinese (a decision waits for its stage's announcement)."""
    if mail.status != MailStatus.HELD:
        return ""
    if mail.hold_stage and mail.campaign_id:
        titles = {s.name: s.title for s in campaigns.list_stages(session, mail.campaign_id)}
        return f"待“{titles.get(mail.hold_stage, mail.hold_stage)}”结果公布后发送"
    return mail.hold_reason or ""


@router.get("/mail", dependencies=[MailOnly])
def mail_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    q = request.query_params
    status = MailStatus(q["status"]) if q.get("status") in {s.value for s in MailStatus} else None
    template = q.get("kind") if q.get("kind") in {t.value for t in MailTemplate} else None
    recipient = typed(q.get("q"), 200) or None
    number = page_of(q.get("p"))
    rows, total = outbox.search_mail(session, status=status, recipient=recipient, template=template,
                                     offset=(number - 1) * MAIL_PER_PAGE, limit=MAIL_PER_PAGE)
    return render(request, "committee/mail.html", {
        "mails": rows, "counts": outbox.counts_by_status(session), "held": outbox.outbox_held(session),
        "f": {"status": status.value if status else "", "kind": template or "", "q": recipient or ""},
        "pager": pager(number, MAIL_PER_PAGE, total, dict(q)), "statuses": list(MailStatus),
        "status_zh": MAIL_STATUS_ZH, "kinds": MAIL_TEMPLATE_ZH, "why_held": {m.id: why_held(session, m) for m in rows},
    })


@router.get("/mail/{mail_id}", dependencies=[MailOnly])
def mail_preview(mail_id: MailId, request: Request, user: CurrentUser, session: SessionDep) -> Response:
    return render(request, "committee/mail_preview.html", {
        "m": (mail := outbox.get_mail(session, mail_id)), "kinds": MAIL_TEMPLATE_ZH,
        "held": outbox.outbox_held(session), "why_held": why_held(session, mail)})


@router.get("/mail/{mail_id}/body", dependencies=[MailOnly])
def mail_body(mail_id: MailId, session: SessionDep, user: CurrentUser) -> Response:
    """The HTML part as sent, for the preview's sandboxed frame (web/headers.py gives this path its
    own policy: no script, the mail's inline styles, framed by our own page only)."""
    return Response(outbox.get_mail(session, mail_id).html_body, media_type="text/html; charset=utf-8")


async def _reason(request: Request) -> str | None:
    form = await request.form()
    reason = form.get("reason")
    return reason.strip()[:500] or None if isinstance(reason, str) else None


def _mail_act(request: Request, session: Session, mail_id: int, verb: str, done: str, act: Any) -> Response:
    back = f"/committee/mail/{mail_id}"
    mail = outbox.get_mail(session, mail_id)  # an unknown mail is a 404
    try:
        act()
    except InvalidTransition:
        session.refresh(mail)
        return flash.redirect(request, back, f"该邮件当前为“{MAIL_STATUS_ZH[mail.status]}”，不能{verb}", "error")
    except JingongError as exc:
        return flash.redirect(request, back, f"未能{verb}：{message_zh(exc)}", "error")
    return flash.redirect(request, back, done)


@router.post("/mail/{mail_id}/hold", dependencies=[CsrfChecked, MailOnly])
async def mail_hold(mail_id: MailId, request: Request, user: CurrentUser, session: SessionDep) -> Response:
    reason = await _reason(request)
    return _mail_act(request, session, mail_id, "暂停", f"第{mail_id}号邮件已暂停，放行前不会发出",
                     lambda: outbox.hold(session, mail_id, actor=bulk.actor_of(user), reason=reason))


@router.post("/mail/{mail_id}/release", dependencies=[CsrfChecked, MailOnly])
async def mail_release(mail_id: MailId, request: Request, user: CurrentUser, session: SessionDep) -> Response:
    reason = await _reason(request)
    return _mail_act(request, session, mail_id, "放行", f"第{mail_id}号邮件已放行，即将发送",
                     lambda: outbox.release(session, actor=bulk.actor_of(user), mail_id=mail_id, reason=reason))


@router.post("/mail/{mail_id}/resend", dependencies=[CsrfChecked, MailOnly])
async def mail_resend(mail_id: MailId, request: Request, user: CurrentUser, session: SessionDep) -> Response:
    reason = await _reason(request)
    return _mail_act(request, session, mail_id, "重新发送", f"第{mail_id}号邮件已重新排队发送",
                     lambda: outbox.resend(session, mail_id, actor=bulk.actor_of(user), reason=reason))


# --- the audit trail -------------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if raw and len(raw.strip()) == 10 else None
    except ValueError:
        raise ValidationFailed(f"not a date: {raw!r}", message_zh="日期格式应为 2021-05-31") from None


def trail_filter(params: Any) -> trail.TrailFilter:
    """The audit page's filters from its query string (dates are Beijing days, both ends included)."""
    raw_id = params.get("nomination", "").strip()
    since, until = _day(params.get("since")), _day(params.get("until"))
    return trail.TrailFilter(
        nomination_id=int(raw_id) if raw_id.isdigit() and len(raw_id) < 10 else None,
        actor=typed(params.get("actor"), 100) or None,
        event=Event(params["event"]) if params.get("event") in {e.value for e in Event} else None,
        action=typed(params.get("action"), 64) or None,
        since=datetime.combine(since, datetime.min.time(), BEIJING) if since else None,
        until=datetime.combine(until + timedelta(days=1), datetime.min.time(), BEIJING) if until else None,
    )


@router.get("/audit")
def audit_page(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    q = request.query_params
    number = page_of(q.get("p"))
    rows, total = trail.search(session, campaign.id or 0, trail_filter(q), offset=(number - 1) * AUDIT_PER_PAGE,
                               limit=AUDIT_PER_PAGE)
    actions = trail.actions_in_use(session, campaign.id or 0)
    return render(request, "committee/audit.html", {
        "rows": rows, "f": dict(q), "all_events": list(Event), "pager": pager(number, AUDIT_PER_PAGE, total, dict(q)),
        "actions": [(a, trail.ACTION_LABELS_ZH.get(a, a)) for a in actions],
        "export_url": "/committee/exports/audit.xlsx?" + urlencode({k: v for k, v in q.items() if v and k != "p"}),
    })
