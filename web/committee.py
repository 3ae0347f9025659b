"""The committee's pages: login, queues, decisions, shortlist, review board, objections, calendar,
users (the dashboard, outbox and audit trail are in web/office.py). Every POST form carries the session's CSRF token."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from accounts import login
from accounts import service as accounts
from accounts import sessions as login_sessions
from accounts.models import Role, User
from audit import service as audit
from campaigns import service as campaigns
from campaigns.models import Campaign, NominatingUnit
from config.campaign import CampaignSpec, StageName
from core.errors import JingongError, NotFound, RateLimited, ValidationFailed
from nominations import attachments
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import STATE_LABELS_ZH, State
from objections import service as objections
from stages import jobs
from stages import review as bring_back
from stages import service as stages
from voting import tally
from web import flash, security
from web.deps import (
    CampaignDep,
    CsrfChecked,
    CurrentUser,
    EngineDep,
    SessionDep,
    SettingsDep,
    SpecDep,
    require,
)
from web.errors import message_zh
from web.schemas import AttachmentId, NominationId, ObjectionId, UserId
from web.templating import render
from web.uploads import send_file
from workflow import bulk, permissions, queries, shortfall, trail
from workflow.machine import EVENT_LABELS_ZH, Event, allowed_events
from workflow.models import TransitionRecord

router = APIRouter(prefix="/committee", include_in_schema=False)
AdminOnly = Depends(require("users"))


def _safe_next(raw: Any, default: str = "/committee") -> str:
    text = raw if isinstance(raw, str) else ""
    return text if text.startswith("/committee") and "//" not in text and "\\" not in text else default


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return render(request, f"committee/{name}", context, status_code=status_code)


# --- login ----------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request) -> Response:
    security.csrf_token(request)  # the login form is a POST form too
    return page(request, "login.html", {"next": _safe_next(request.query_params.get("next"))})


@router.post("/login", dependencies=[CsrfChecked])
async def login_post(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    form = await request.form()
    username, password = form.get("username"), form.get("password")
    back = _safe_next(form.get("next"))
    if not (isinstance(username, str) and isinstance(password, str) and len(password) <= 256):
        return page(request, "login.html", {"error": "用户名或密码错误", "next": back}, status_code=401)
    try:
        # the password check is slow on purpose: off the event loop
        result = await run_in_threadpool(
            login.attempt, engine, settings, username, password,
            address=security.client_address(request), previous_token=security.session_token(request))
    except RateLimited as exc:
        response = page(request, "login.html", {"error": message_zh(exc), "next": back}, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except ValidationFailed as exc:
        return page(request, "login.html", {"error": message_zh(exc), "next": back}, status_code=401)
    security.log_in(request, result.token)
    return RedirectResponse(back, status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, session: SessionDep) -> Response:
    token = security.session_token(request)
    if token is not None:
        accounts.log_out(session, token)
    security.log_out(request)
    return RedirectResponse("/committee/login", status_code=303)


# --- overview -----------------------------------------------------------------------------------


def _upcoming(session: Session, campaign: Campaign) -> list[Any]:
    return stages.upcoming(session, campaign.id or 0)[:12]


@router.post("/calendar/retry", dependencies=[CsrfChecked, Depends(require("stages"))])
def retry_steps(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    """立即重试: run the due steps now, a blocked one included (else it waits for its retry)."""
    results = jobs.run_due(session, campaign, bulk.actor_of(user))
    return _after_steps(request, results, f"已执行{len(results)}个到期步骤" if results else "没有到期的步骤")


def _after_steps(request: Request, results: list[jobs.StepResult], done: str, blocked_prefix: str = "") -> Response:
    if results and not results[-1].done:
        why = results[-1].problem_zh or results[-1].summary
        return flash.redirect(request, "/committee", f"{blocked_prefix}仍未能执行：{why}", "error")
    return flash.redirect(request, "/committee", done)


@router.post("/review/shortfall", dependencies=[CsrfChecked, AdminOnly])
async def review_shortfall(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    """The office admin closes the review with fewer formal candidates than the awards (audited)."""
    form = await request.form()
    shortfall.decide(session, campaign.id or 0, actor=bulk.actor_of(user), reason=str(form.get("reason") or "")[:2000])
    results = jobs.run_due(session, campaign, bulk.actor_of(user))
    return _after_steps(request, results, "已按现有人数结束综合评审，决定已记入审计记录", "决定已记录，但")


@router.post("/review/bring-next", dependencies=[CsrfChecked, AdminOnly])
async def review_bring_next(request: Request, user: CurrentUser, session: SessionDep,
                            campaign: CampaignDep) -> Response:
    """递补: the candidate not selected with the most votes comes back into the review (audited)."""
    form = await request.form()
    try:
        nomination, votes = bring_back.bring_next(session, campaign.id or 0, actor=bulk.actor_of(user),
                                              reason=str(form.get("reason") or "")[:2000])
    except JingongError as exc:
        return flash.redirect(request, "/committee", "未能递补：" + message_zh(exc), "error")
    return flash.redirect(request, f"/committee/nominations/{nomination.id}",
                          f"已将{nomination.name}（{votes}票）递补纳入综合评审，请重新评审")


@router.get("/calendar")
def calendar_page(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    return page(request, "calendar.html", {
        "campaign": campaign, "stages": campaigns.list_stages(session, campaign.id or 0),
        "upcoming": _upcoming(session, campaign), "may_stages": accounts.may(Role(user.role), "stages"),
        "zone": ZoneInfo(campaign.timezone),
    })


@router.post("/calendar/{stage_name}/{action}", dependencies=[CsrfChecked, Depends(require("stages"))])
async def stage_act(stage_name: str, action: str, request: Request, user: CurrentUser, session: SessionDep,
                    campaign: CampaignDep) -> Response:
    """Open or close a stage by hand, or move its window; the reason is required and audited."""
    try:
        name = StageName(stage_name)
    except ValueError:
        raise NotFound(f"no stage {stage_name!r}", message_zh="没有该阶段") from None
    form = await request.form()
    reason = str(form.get("reason") or "")[:2000]  # required: the stages service refuses none
    actor, cid = bulk.actor_of(user), campaign.id or 0
    if action == "open":
        stages.open_stage(session, cid, name, actor=actor, reason=reason)
        return flash.redirect(request, "/committee/calendar", "已开启阶段")
    if action == "close":  # the close runs now; a close a rule refuses changes nothing
        jobs.close_now(session, cid, name, actor=actor, reason=reason)
        return flash.redirect(request, "/committee/calendar", "已结束该阶段")
    if action == "move":
        opens, closes = (campaigns.local_instant(str(value), campaign.timezone) if value else None
                         for value in (form.get("opens_at"), form.get("closes_at")))
        stages.move_window(session, cid, name, actor=actor, reason=reason, opens_at=opens, closes_at=closes)
        return flash.redirect(request, "/committee/calendar", "已调整阶段时间")
    raise NotFound(f"no action {action!r}; use open, close or move", message_zh="没有该操作")


# --- the screening queue ---------------------------------------------------------------------------


def _queue_row(session: Session, n: Nomination, spec: CampaignSpec, user: User, usage: dict[int, int],
               units: dict[int, NominatingUnit]) -> dict[str, Any]:
    unit = units.get(n.unit_id or 0)
    return {
        "n": n, "unit": unit, "priority": len(n.priority_conditions or []),
        "over_quota": unit is not None and usage.get(unit.id or 0, 0) > unit.quota,
        "prior": nominations.prior_awards_of(session, n, spec),
        "attachments": attachments.attachments_of(session, n.id or 0),
        "conflict": bulk.has_conflict(user, n),
    }


def _rows(session: Session, campaign: Campaign, spec: CampaignSpec, user: User,
          states: list[State]) -> list[dict[str, Any]]:
    usage = nominations.unit_usage(session, campaign.id or 0)
    units = {u.id or 0: u for u in campaigns.list_units(session, campaign.id or 0)}
    return [_queue_row(session, n, spec, user, usage, units)
            for n in nominations.list_nominations(session, campaign.id or 0, states=states)]


def _act_data(form: FormData, campaign: Campaign) -> dict[str, Any] | None:
    """What an act carries besides its reason: the track of a vet, the due instant of a send-back
    (退回补正, typed in Beijing time)."""
    event, track, due = form.get("event"), form.get("track"), form.get("due_at")
    if event == Event.RETURN.value:
        text = due.strip()[:32] if isinstance(due, str) else ""
        return {"due_at": campaigns.local_instant(text, campaign.timezone).isoformat() if text else None}
    return {"track": track} if isinstance(track, str) and track else None


# --- one nomination ------------------------------------------------------------------------------


def _events_for(user: User, n: Nomination) -> list[Event]:
    if bulk.has_conflict(user, n):
        return []
    return [e for e in allowed_events(State(n.state)) if permissions.may_fire(Role(user.role), e)
            and e not in {Event.SUBMIT, Event.RESUBMIT, Event.OBJECT}]


@router.get("/nominations/{nomination_id}")
def nomination_page(nomination_id: NominationId, request: Request, user: CurrentUser, session: SessionDep,
                    campaign: CampaignDep, spec: SpecDep) -> Response:
    n = nominations.get_in_campaign(session, campaign.id or 0, nomination_id)
    unit = campaigns.find_unit(session, n.unit_id)
    return page(request, "nomination.html", {
        "n": n, "unit": unit, "history": queries.history(session, nomination_id),
        "attachments": attachments.attachments_of(session, nomination_id),
        "prior": nominations.prior_awards_of(session, n, spec),
        "over_quota": nominations.is_over_quota(session, n),
        "problems": nominations.form_problems(n, spec) if n.state == State.DRAFT else [],
        "events": _events_for(user, n), "event_labels": EVENT_LABELS_ZH,
        "conflict": bulk.has_conflict(user, n), "conditions": {c.code: c.text for c in spec.priority_conditions},
        "objections": objections.of_nomination(session, nomination_id),
        "may_paper": accounts.may(Role(user.role), "paper"), "tally": _tally(session, campaign, n),
        "names": trail.member_names(session),
    })


@router.post("/nominations/{nomination_id}/act", dependencies=[CsrfChecked])
async def act(nomination_id: NominationId, request: Request, user: CurrentUser, session: SessionDep,
              campaign: CampaignDep) -> Response:
    form = await request.form()
    event, reason, version = form.get("event"), form.get("reason"), form.get("version")
    data = _act_data(form, campaign)
    expected = int(version) if isinstance(version, str) and version.isdigit() and len(version) < 10 else None
    record = bulk.fire(session, user, nomination_id, event if isinstance(event, str) else "",
                       reason=reason if isinstance(reason, str) else None, data=data, expected_version=expected)
    back = _safe_next(form.get("next"), f"/committee/nominations/{nomination_id}")
    if record is None:
        return flash.redirect(request, back, "状态未变（已是该状态）")
    return flash.redirect(request, back, f"申报{nomination_id}：{STATE_LABELS_ZH[State(record.from_state)]} → "
                        f"{STATE_LABELS_ZH[State(record.to_state)]}")


@router.post("/nominations/{nomination_id}/paper", dependencies=[CsrfChecked, Depends(require("paper"))])
async def paper(nomination_id: NominationId, request: Request, user: CurrentUser, session: SessionDep) -> Response:
    form = await request.form()
    copies = form.get("copies")
    if not isinstance(copies, str) or not copies.isdigit() or len(copies) > 3:
        raise ValidationFailed("copies must be a number", message_zh="请填写份数")
    bulk.record_paper(session, user, nominations.get(session, nomination_id), int(copies))
    return flash.redirect(request, f"/committee/nominations/{nomination_id}", f"已登记收到纸质材料{copies}份")


@router.get("/attachments/{attachment_id}")
def attachment(attachment_id: AttachmentId, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> Response:
    return send_file(attachments.fetch(session, settings.uploads_dir, attachment_id))


# --- shortlist and review ---------------------------------------------------------------------------


@router.get("/shortlist")
def shortlist(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
              spec: SpecDep) -> Response:
    rows = _rows(session, campaign, spec, user, [State.SCREENED, State.SHORTLISTED])
    rows.sort(key=lambda r: (-r["priority"], r["n"].id))
    chosen = sum(1 for r in rows if r["n"].state == State.SHORTLISTED)
    return page(request, "shortlist.html", {"rows": rows, "chosen": chosen, "min": spec.shortlist.min,
                                            "max": spec.shortlist.max})


@router.post("/shortlist", dependencies=[CsrfChecked])
async def shortlist_post(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    """Make the shortlist the ticked set, in one transaction (removals first, to make room)."""
    form = await request.form()
    wanted = {int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit() and len(v) < 10}
    current = nominations.list_nominations(session, campaign.id or 0, states=[State.SHORTLISTED, State.SCREENED])
    remove = [n.id or 0 for n in current if n.state == State.SHORTLISTED and n.id not in wanted]
    add = [n.id or 0 for n in current if n.state == State.SCREENED and n.id in wanted]
    unknown = wanted - {n.id for n in current}
    if unknown:
        raise ValidationFailed(f"nomination(s) {sorted(unknown)} are not screened",
                               message_zh=f"申报{sorted(unknown)}不在可选范围内")
    if remove:
        bulk.fire_many(session, user, remove, Event.UNSHORTLIST)
    if add:
        bulk.fire_many(session, user, add, Event.SHORTLIST)
    return flash.redirect(request, "/committee/shortlist",
                          f"初步候选人名单已保存：新增{len(add)}名，移出{len(remove)}名")


def _tally(session: Session, campaign: Campaign, n: Nomination) -> int | None:
    """The candidate's votes: the frozen tally after the voting close, the live count before."""
    return tally.tally_of(session, campaign, n)


def _notes(session: Session, nomination_id: int) -> list[TransitionRecord]:
    return [r for r in queries.history(session, nomination_id) if r.reason]


# --- objections ---------------------------------------------------------------------------------


@router.get("/objections")
def objection_queue(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    rows = objections.list_objections(session, campaign.id or 0)
    names = {n.id: n for n in nominations.list_nominations(session, campaign.id or 0,
                                                           states=[State.ON_HOLD, State.VETTED, State.DISQUALIFIED,
                                                                   State.PUBLICIZED])}
    return page(request, "objections.html", {"rows": rows, "names": names,
                                             "names_of_members": trail.member_names(session),
                                             "may_rule": permissions.may_fire(Role(user.role), Event.UPHOLD_OBJECTION)})


@router.post("/objections/{objection_id}/rule", dependencies=[CsrfChecked])
async def objection_rule(objection_id: ObjectionId, request: Request, user: CurrentUser,
                         session: SessionDep) -> Response:
    form = await request.form()
    decision, reason = form.get("decision"), form.get("reason")
    if decision not in {"uphold", "dismiss"}:
        raise ValidationFailed("decision must be uphold or dismiss", message_zh="请选择异议成立或不成立")
    objections.rule(session, user, objection_id, uphold=decision == "uphold",
                    reason=reason if isinstance(reason, str) else None)
    ruling = "异议成立" if decision == "uphold" else "异议不成立"
    return flash.redirect(request, "/committee/objections", f"已作出处理：{ruling}")


# --- users -----------------------------------------------------------------


@router.get("/users", dependencies=[AdminOnly])
def users_page(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    return page(request, "users.html", {"users": accounts.list_users(session), "roles": list(Role),
                                        "units": campaigns.list_units(session, campaign.id or 0),
                                        "live_sessions": login_sessions.live_counts(session)})


@router.post("/users/{user_id}/logout", dependencies=[CsrfChecked, AdminOnly])
def users_end_sessions(request: Request, user_id: UserId, user: CurrentUser, session: SessionDep) -> Response:
    """The office admin ends every session of a member."""
    member = accounts.get_user(session, user_id)
    ended = accounts.end_sessions(session, member, actor=accounts.actor_of(user))
    return flash.redirect(request, "/committee/users", f"已结束用户 {member.username} 的 {ended} 个登录会话")


@router.post("/users", dependencies=[CsrfChecked, AdminOnly])
async def users_post(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    unit = values.get("unit_id", "")
    try:
        created = accounts.create_user(session, values.get("username", ""), values.get("password", ""),
                                       values.get("role", ""), display_name=values.get("display_name") or None,
                                       email=values.get("email") or None,
                                       unit_id=int(unit) if unit.isdigit() and len(unit) < 10 else None)
        audit.record(session, actor=bulk.actor_of(user), action="user_created", subject=f"user:{created.username}",
                     data={"role": str(created.role)})
    except JingongError as exc:
        return flash.redirect(request, "/committee/users", "未能创建：" + message_zh(exc), "error")
    return flash.redirect(request, "/committee/users", f"已创建用户 {created.username}")
