"""The audit trail as the office reads it: the state changes of nominations and the other audited
acts in one timeline, newest first, with who did it in words (a member's display name, 系统（定时任务）,
申请人) and the candidate's name; filtered, paged, and whole for the Excel export."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from accounts.models import User
from audit.models import AuditEvent
from campaigns import service as campaigns
from nominations.models import Nomination
from nominations.states import STATE_LABELS_ZH, State
from workflow.machine import EVENT_LABELS_ZH, Event
from workflow.models import TransitionRecord

SYSTEM_NAMES_ZH = {
    "scheduler": "系统（定时任务）", "mail-sender": "系统（邮件发送）", "vote-monitor": "系统（投票监测）",
    "ledger": "系统（公示账本）", "simulated-office": "系统（模拟组委会）", "cli": "系统（命令行）",
}
ACTION_LABELS_ZH = {
    "paper_received": "登记纸质材料", "extension_granted": "个人延期", "stage_opened": "开启阶段",
    "stage_closed": "结束阶段", "stage_window_moved": "调整阶段时间", "window_moved": "调整阶段时间",
    "step_ran_late": "定时步骤延迟执行", "alert": "提醒组委会", "login": "登录", "login_failed": "登录失败",
    "login_locked": "登录锁定", "logout": "退出登录", "password_set": "设置密码", "sessions_ended": "结束登录会话",
    "user_created": "创建用户", "user_activated": "启用用户", "user_deactivated": "停用用户",
    "mail.hold": "暂停发件箱", "mail.unhold": "恢复发件箱", "mail.hold_one": "暂停一封邮件",
    "mail.release": "放行邮件", "mail.resend": "重新发送邮件", "mail.announce": "公布后发送通知",
    "mail.announce_scheduled": "定时公布通知", "vote_invalidated": "作废选票", "votes_flagged": "异常投票提示",
    "votes_frozen": "冻结计票", "tally_published": "公布计票", "tally_corrected": "更正计票",
    "server_started": "服务启动", "chain_head_published": "公布审计链头",
}
STEP_ZH = {"open": "开始", "close": "截止"}
#: the newest rows an export holds at most (a campaign's whole trail is a few thousand)
EXPORT_LIMIT = 50_000


@dataclass(frozen=True)
class TrailFilter:
    nomination_id: int | None = None
    actor: str | None = None  # part of the recorded actor or of a member's display name
    event: Event | None = None  # only state changes of this event
    action: str | None = None  # only other acts of this action
    since: datetime | None = None
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class TrailRow:
    at: datetime
    kind: str  # "transition" or "event"
    what_zh: str
    nomination_id: int | None
    candidate: str
    change_zh: str  # 已提交 → 已通过资格审核, or the event's subject
    actor: str  # as recorded, e.g. user:admin
    actor_zh: str
    reason: str
    link: str = ""  # where the object of an act is shown (a mail's preview)


def actor_zh(actor: str, names: dict[str, str]) -> str:
    kind, _, name = actor.partition(":")
    if kind == "user":
        return names.get(name) or name
    if kind == "system":
        return SYSTEM_NAMES_ZH.get(name, f"系统（{name}）")
    if kind == "applicant":
        return "申请人"
    if kind == "public":
        return f"异议人 {name.removeprefix('objector:')}" if name.startswith("objector:") else "公众"
    return actor


def _state_zh(value: str) -> str:
    try:
        return STATE_LABELS_ZH[State(value)]
    except ValueError:
        return value


def _event_zh(value: str) -> str:
    try:
        return EVENT_LABELS_ZH[Event(value)]
    except ValueError:
        return value


def subject_zh(subject: str, titles: dict[str, str], names: dict[str, str]) -> tuple[str, str]:
    """What an act was done to, in words, and the page that shows it (if any)."""
    kind, _, rest = subject.partition(":")
    if kind == "mail":
        return ("全部已暂停的邮件", "") if rest == "all" else (f"第{rest}号邮件", f"/committee/mail/{rest}")
    if subject == "outbox":
        return "发件箱", "/committee/mail"
    if kind == "user":
        return f"用户 {names.get(rest) or rest}", ""
    if kind in titles:
        step = rest.partition(":")[0]
        return titles[kind] + ("截止提醒" if step == "reminder" else STEP_ZH.get(step, "")), "/committee/calendar"
    return subject, ""


def _nomination_of(subject: str) -> int | None:
    kind, _, rest = subject.partition(":")
    return int(rest) if kind == "nomination" and rest.isdigit() and len(rest) < 10 else None


def _actor_condition(column: Any, text: str, names: dict[str, str]) -> Any:
    members = [f"user:{u}" for u, shown in names.items() if text in shown]
    return or_(col(column).contains(text), col(column).in_(members)) if members else col(column).contains(text)


def _transitions(campaign_id: int, f: TrailFilter, names: dict[str, str]) -> Any:
    query = select(TransitionRecord).where(TransitionRecord.campaign_id == campaign_id)
    if f.nomination_id is not None:
        query = query.where(TransitionRecord.nomination_id == f.nomination_id)
    if f.event is not None:
        query = query.where(TransitionRecord.event == f.event.value)
    if f.actor:
        query = query.where(_actor_condition(TransitionRecord.actor, f.actor, names))
    if f.since is not None:
        query = query.where(col(TransitionRecord.at) >= f.since)
    if f.until is not None:
        query = query.where(col(TransitionRecord.at) < f.until)
    return query


def _of_campaign(campaign_id: int) -> Any:
    return or_(col(AuditEvent.campaign_id) == campaign_id, col(AuditEvent.campaign_id).is_(None))


def _events(campaign_id: int, f: TrailFilter, names: dict[str, str]) -> Any:
    # acts of no campaign (logins, the outbox switch) belong to every campaign's trail
    query = select(AuditEvent).where(_of_campaign(campaign_id))
    if f.nomination_id is not None:
        query = query.where(AuditEvent.subject == f"nomination:{f.nomination_id}")
    if f.action:
        query = query.where(AuditEvent.action == f.action)
    if f.actor:
        query = query.where(_actor_condition(AuditEvent.actor, f.actor, names))
    if f.since is not None:
        query = query.where(col(AuditEvent.at) >= f.since)
    if f.until is not None:
        query = query.where(col(AuditEvent.at) < f.until)
    return query


def member_names(session: Session) -> dict[str, str]:
    return {u.username: u.display_name or u.username for u in session.exec(select(User))}


def _count(session: Session, query: Any) -> int:
    return int(session.exec(select(func.count()).select_from(query.subquery())).one())


def search(session: Session, campaign_id: int, f: TrailFilter, *, offset: int = 0,
           limit: int = 100) -> tuple[list[TrailRow], int]:
    """One page of the filtered trail (newest first) and how many rows the filter finds in all."""
    names = member_names(session)
    want_transitions, want_events = f.action is None, f.event is None
    top = offset + limit
    transitions: list[TransitionRecord] = []
    events: list[AuditEvent] = []
    total = 0
    if want_transitions:
        q = _transitions(campaign_id, f, names)
        total += _count(session, q)
        transitions = list(session.exec(q.order_by(col(TransitionRecord.at).desc(),
                                                   col(TransitionRecord.id).desc()).limit(top)))
    if want_events:
        q = _events(campaign_id, f, names)
        total += _count(session, q)
        events = list(session.exec(q.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc()).limit(top)))
    both: list[list[TransitionRecord | AuditEvent]] = [list(transitions), list(events)]
    merged = list(heapq.merge(*both, key=_at, reverse=True))[offset:top]
    ids = {r.nomination_id for r in merged if isinstance(r, TransitionRecord)}
    ids |= {n for r in merged if isinstance(r, AuditEvent) and (n := _nomination_of(r.subject)) is not None}
    candidates = {n.id: n.name or "" for n in session.exec(select(Nomination).where(col(Nomination.id).in_(ids)))}
    titles = {s.name: s.title for s in campaigns.list_stages(session, campaign_id)}
    return [_row(r, names, candidates, titles) for r in merged], total


def _at(r: TransitionRecord | AuditEvent) -> datetime:
    return r.at


def _row(r: TransitionRecord | AuditEvent, names: dict[str, str], candidates: dict[int | None, str],
         titles: dict[str, str]) -> TrailRow:
    if isinstance(r, TransitionRecord):
        return TrailRow(r.received_at or r.at, "transition", _event_zh(r.event), r.nomination_id,
                        candidates.get(r.nomination_id, ""), f"{_state_zh(r.from_state)} → {_state_zh(r.to_state)}",
                        r.actor, actor_zh(r.actor, names), r.reason or "")
    nomination_id = _nomination_of(r.subject)
    what, link = ("", "") if nomination_id is not None else subject_zh(r.subject, titles, names)
    return TrailRow(r.at, "event", ACTION_LABELS_ZH.get(r.action, r.action), nomination_id,
                    candidates.get(nomination_id, "") if nomination_id is not None else "",
                    what, r.actor, actor_zh(r.actor, names), r.reason or "", link)


def actions_in_use(session: Session, campaign_id: int) -> list[str]:
    rows = session.exec(select(AuditEvent.action).where(_of_campaign(campaign_id)).distinct())
    return sorted(rows)
