"""The calendar's acts: the due instants (scheduled steps) the windows imply, what the scheduler
will do next, and the committee's hand on the windows (open, close, move), each audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from audit import service as audit
from campaigns import service as campaigns
from campaigns.models import Campaign, Stage
from config.campaign import CampaignSpec, StageName
from core import clock
from core.actor import Actor
from core.clock import ensure_utc
from core.errors import ValidationFailed
from stages.models import ScheduledStep, StepKind


def load_campaign(session: Session, spec: CampaignSpec, *, replace_windows: bool = False) -> Campaign:
    """Create the campaign from its file, or update its rules, and arm the steps its windows imply."""
    campaign = campaigns.store_campaign(session, spec, replace_windows=replace_windows)
    rebuild_steps(session, campaign)
    return campaign


def desired_steps(session: Session, campaign: Campaign) -> list[tuple[str, str, StepKind, int | None, datetime]]:
    """(key, stage, kind, param, due_at) for every step the calendar implies."""
    spec = campaigns.spec_of(campaign)
    out: list[tuple[str, str, StepKind, int | None, datetime]] = []
    for stage in campaigns.list_stages(session, campaign.id or 0):
        out.append((f"{stage.name}:open", stage.name, StepKind.OPEN, None, stage.opens_at))
        out.append((f"{stage.name}:close", stage.name, StepKind.CLOSE, None, stage.closes_at))
        if stage.name == StageName.NOMINATION:
            for days in sorted(set(spec.rules.reminder_days), reverse=True):
                due = stage.closes_at - timedelta(days=days)
                if due > stage.opens_at:
                    out.append((f"{stage.name}:reminder:{days}", stage.name, StepKind.REMINDER, days, due))
    return out


def rebuild_steps(session: Session, campaign: Campaign) -> int:
    """Make the step rows match the calendar. A pending step follows its window; a step already
    done is re-armed only if its window moved past the moment it ran (a reopened stage).
    Returns how many rows changed."""
    existing = {s.key: s for s in session.exec(select(ScheduledStep).where(ScheduledStep.campaign_id == campaign.id))}
    changed = 0
    wanted = set()
    for key, stage, kind, param, due in desired_steps(session, campaign):
        wanted.add(key)
        step = existing.get(key)
        if step is None:
            session.add(ScheduledStep(campaign_id=campaign.id or 0, key=key, stage=stage, kind=kind, param=param,
                                      due_at=due))
            changed += 1
        elif step.due_at != due:
            if step.done_at is not None and due > step.done_at:
                step.done_at, step.attempts, step.late_seconds = None, 0, None
            step.due_at, step.retry_at = due, None
            session.add(step)
            changed += 1
    for key, step in existing.items():
        if key not in wanted and step.done_at is None:
            session.delete(step)
            changed += 1
    session.flush()
    return changed


def pending_steps(session: Session, campaign_id: int, limit: int | None = None) -> list[ScheduledStep]:
    query = (
        select(ScheduledStep)
        .where(ScheduledStep.campaign_id == campaign_id, col(ScheduledStep.done_at).is_(None))
        .order_by(col(ScheduledStep.due_at), col(ScheduledStep.id))
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


STEP_LABELS_ZH = {StepKind.OPEN: "开始", StepKind.CLOSE: "截止", StepKind.REMINDER: "截止提醒"}


@dataclass(frozen=True)
class UpcomingStep:
    key: str
    stage: str
    title: str
    kind: StepKind
    due_local: datetime
    retry_local: datetime | None
    last_error: str | None

    def __str__(self) -> str:
        when = self.due_local.strftime("%Y-%m-%d %H:%M")
        what = f"{self.title}{STEP_LABELS_ZH[self.kind]}"
        if self.kind is StepKind.REMINDER:
            what = f"{self.title}{self.key.rsplit(':', 1)[-1]}天截止提醒"
        text = f"北京时间 {when} {what}"
        if self.last_error:
            text += f"（上次未能执行：{self.last_error}）"
        return text


def upcoming(session: Session, campaign_id: int, limit: int = 20) -> list[UpcomingStep]:
    """What the scheduler will do next, and when, in the campaign's local time."""
    campaign = campaigns.get_campaign_by_id(session, campaign_id)
    spec = campaigns.spec_of(campaign)
    titles = {s.name: s.title for s in campaigns.list_stages(session, campaign_id)}
    return [
        UpcomingStep(s.key, s.stage, titles.get(s.stage, s.stage), StepKind(s.kind), spec.to_local(s.due_at),
                     spec.to_local(s.retry_at) if s.retry_at else None, s.last_error)
        for s in pending_steps(session, campaign_id, limit)
    ]


def blocked_steps(session: Session, campaign_id: int) -> list[UpcomingStep]:
    """Steps past their instant that a rule refused: what needs doing now."""
    now = clock.now()
    return [s for s in upcoming(session, campaign_id, limit=50)
            if s.last_error and s.due_local <= now.astimezone(s.due_local.tzinfo)]


# --- committee control: every act audited with who and why -------------------------------------


def _required_reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise ValidationFailed("opening, closing or moving a window needs a reason",
                               message_zh="请填写操作理由（将记入操作记录）")
    return reason.strip()


def move_window(
    session: Session, campaign_id: int, name: StageName | str, *, actor: Actor, reason: str | None,
    opens_at: datetime | None = None, closes_at: datetime | None = None,
) -> Stage:
    reason = _required_reason(reason)
    stage = campaigns.get_stage(session, campaign_id, name)
    new_opens = ensure_utc(opens_at) if opens_at else stage.opens_at
    new_closes = ensure_utc(closes_at) if closes_at else stage.closes_at
    if new_closes <= new_opens:
        raise ValidationFailed(f"stage {stage.name}: closes must be after opens", message_zh="截止时间须晚于开始时间")
    before = {"opens_at": stage.opens_at.isoformat(), "closes_at": stage.closes_at.isoformat()}
    stage.opens_at, stage.closes_at = new_opens, new_closes
    if stage.closed_at is not None and new_closes > clock.now():
        stage.closed_at = None  # reopened: its close will run again at the new instant
    session.add(stage)
    audit.record(session, actor=actor, action="stage_window_moved", subject=stage.name, reason=reason,
                 campaign_id=campaign_id,
                 data={"before": before,
                       "after": {"opens_at": new_opens.isoformat(), "closes_at": new_closes.isoformat()}})
    rebuild_steps(session, campaigns.get_campaign_by_id(session, campaign_id))
    campaigns.notify_calendar_changed(session)
    return stage


def open_stage(
    session: Session, campaign_id: int, name: StageName | str, *, actor: Actor, reason: str | None = None,
    until: datetime | None = None,
) -> Stage:
    """Open a stage by hand now (its open step runs at the next tick). A stage already closed
    needs ``until``, its new closing instant."""
    _required_reason(reason)
    stage = campaigns.get_stage(session, campaign_id, name)
    now = clock.now()
    closes = ensure_utc(until) if until else stage.closes_at
    if closes <= now:
        raise ValidationFailed(f"stage {stage.name} closed at {stage.closes_at.isoformat()}; give a new closing "
                               "instant to reopen it", message_zh="该阶段已截止，重新开启须指定新的截止时间")
    return move_window(session, campaign_id, name, actor=actor, reason=reason,
                       opens_at=min(stage.opens_at, now), closes_at=closes)


def close_stage(
    session: Session, campaign_id: int, name: StageName | str, *, actor: Actor, reason: str | None = None,
) -> Stage:
    """Close a stage by hand now (its close step runs at the next tick)."""
    _required_reason(reason)
    stage = campaigns.get_stage(session, campaign_id, name)
    now = clock.now()
    if stage.closes_at <= now:
        return stage
    return move_window(session, campaign_id, name, actor=actor, reason=reason,
                       opens_at=min(stage.opens_at, now), closes_at=now)
