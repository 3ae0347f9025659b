"""The campaign calendar: load a campaign file into the database, read windows, ask what is
open. The stored windows are the truth (the committee may move them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from audit import service as audit
from config.campaign import CampaignSpec, StageName, parse_campaign
from core import clock
from core.actor import Actor
from core.clock import ensure_utc
from core.errors import NotFound, ValidationFailed
from nominations.models import Nomination
from stages.models import Campaign, NominatingUnit, ScheduledStep, Stage, StepKind
from workflow.states import State

_spec_cache: dict[tuple[int, str], CampaignSpec] = {}


def load_campaign(session: Session, spec: CampaignSpec, *, replace_windows: bool = False) -> Campaign:
    """Create the campaign from its file, or update its rules. Windows already stored are kept
    unless ``replace_windows`` (the committee may have moved them)."""
    campaign = session.exec(select(Campaign).where(Campaign.slug == spec.slug)).first()
    payload = json.loads(spec.model_dump_json())
    if campaign is None:
        campaign = Campaign(
            slug=spec.slug,
            name=spec.name,
            award_name=spec.award_name,
            edition=spec.edition,
            timezone=spec.timezone,
            spec=payload,
            created_at=clock.now(),
        )
        session.add(campaign)
        session.flush()
    else:
        campaign.name, campaign.award_name = spec.name, spec.award_name
        campaign.edition, campaign.timezone, campaign.spec = spec.edition, spec.timezone, payload
        session.add(campaign)
    assert campaign.id is not None
    existing = {s.name: s for s in session.exec(select(Stage).where(Stage.campaign_id == campaign.id))}
    for position, stage_spec in enumerate(spec.stages):
        stage = existing.get(stage_spec.name)
        if stage is None:
            session.add(
                Stage(
                    campaign_id=campaign.id,
                    name=stage_spec.name.value,
                    title=stage_spec.title,
                    position=position,
                    opens_at=stage_spec.opens,
                    closes_at=stage_spec.closes,
                )
            )
        else:
            stage.title, stage.position = stage_spec.title, position
            if replace_windows:
                stage.opens_at, stage.closes_at = stage_spec.opens, stage_spec.closes
            session.add(stage)
    units = {u.name: u for u in session.exec(select(NominatingUnit).where(NominatingUnit.campaign_id == campaign.id))}
    for unit_spec in spec.units:
        unit = units.get(unit_spec.name)
        if unit is None:
            unit = NominatingUnit(campaign_id=campaign.id, name=unit_spec.name, category="", quota=0)
        unit.category, unit.quota = unit_spec.category, unit_spec.quota
        unit.contact_email = unit_spec.contact_email or unit.contact_email
        session.add(unit)
    session.flush()
    rebuild_steps(session, campaign)
    return campaign


def get_campaign(session: Session, slug: str | None = None) -> Campaign:
    """The campaign named by ``slug``, or the newest one."""
    query = select(Campaign)
    query = query.where(Campaign.slug == slug) if slug else query.order_by(col(Campaign.id).desc())
    campaign = session.exec(query).first()
    if campaign is None:
        hint = f"campaign {slug!r} not found" if slug else "no campaign loaded"
        raise NotFound(f"{hint}: run `jingong init` first")
    return campaign


def get_campaign_by_id(session: Session, campaign_id: int) -> Campaign:
    # The identity map holds rows weakly; keep campaigns for the session's life so that every
    # transition of a batch does not load the campaign again.
    held: dict[int, Campaign] = session.info.setdefault("jingong_campaigns", {})
    campaign = held.get(campaign_id)
    if campaign is not None and campaign in session:
        return campaign
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    held[campaign_id] = campaign
    return campaign


_spec_by_object: dict[tuple[int, int], tuple[dict[str, Any], CampaignSpec]] = {}


def spec_of(campaign: Campaign) -> CampaignSpec:
    """The campaign's rules (counts, quotas, contacts), parsed once per version."""
    assert campaign.id is not None
    # fast path: the same loaded row asks again (keeps a reference so the id is not reused)
    hit = _spec_by_object.get((campaign.id, id(campaign.spec)))
    if hit is not None and hit[0] is campaign.spec:
        return hit[1]
    key = (campaign.id, json.dumps(campaign.spec, sort_keys=True, ensure_ascii=False))
    spec = _spec_cache.get(key)
    if spec is None:
        if len(_spec_cache) > 64:
            _spec_cache.clear()
        spec = _spec_cache[key] = parse_campaign(campaign.spec, f"campaign {campaign.slug}")
    if len(_spec_by_object) > 256:
        _spec_by_object.clear()
    _spec_by_object[(campaign.id, id(campaign.spec))] = (campaign.spec, spec)
    return spec


def list_stages(session: Session, campaign_id: int) -> list[Stage]:
    query = select(Stage).where(Stage.campaign_id == campaign_id).order_by(col(Stage.position))
    return list(session.exec(query))


def get_stage(session: Session, campaign_id: int, name: StageName | str) -> Stage:
    held: dict[tuple[int, str], Stage] = session.info.setdefault("jingong_stages", {})
    stage = held.get((campaign_id, str(name)))
    if stage is not None and stage in session:
        return stage
    stage = session.exec(
        select(Stage).where(Stage.campaign_id == campaign_id, Stage.name == str(name))
    ).first()
    if stage is None:
        raise NotFound(f"stage {name} not found in campaign {campaign_id}")
    held[(campaign_id, str(name))] = stage
    return stage


def is_open(stage: Stage, at: datetime | None = None) -> bool:
    """Open by the clock: from ``opens_at`` inclusive to ``closes_at`` exclusive."""
    at = at or clock.now()
    return stage.opens_at <= at < stage.closes_at


def open_stages(session: Session, campaign_id: int, at: datetime | None = None) -> list[Stage]:
    at = at or clock.now()
    return [s for s in list_stages(session, campaign_id) if is_open(s, at)]


def submission_deadline(
    stage: Stage, spec: CampaignSpec, extension_until: datetime | None = None
) -> datetime:
    """The instant from which a submission is refused (exclusive end of the window)."""
    deadline = stage.closes_at + timedelta(seconds=spec.rules.submission_grace_seconds)
    if extension_until is not None and extension_until > deadline:
        deadline = extension_until
    return deadline


def list_units(session: Session, campaign_id: int) -> list[NominatingUnit]:
    query = select(NominatingUnit).where(NominatingUnit.campaign_id == campaign_id)
    return list(session.exec(query.order_by(col(NominatingUnit.id))))


def get_unit(session: Session, unit_id: int) -> NominatingUnit:
    unit = session.get(NominatingUnit, unit_id)
    if unit is None:
        raise NotFound(f"nominating unit {unit_id} not found")
    return unit


def get_unit_cached(session: Session, unit_id: int) -> NominatingUnit | None:
    """A unit, held for the session's life (mail of a whole stage close reads the same few)."""
    held: dict[int, NominatingUnit | None] = session.info.setdefault("jingong_units", {})
    if unit_id not in held:
        held[unit_id] = session.get(NominatingUnit, unit_id)
    return held[unit_id]


@dataclass(frozen=True)
class LocalWindow:
    name: str
    title: str
    opens: datetime
    closes: datetime
    open_now: bool


def calendar(session: Session, campaign: Campaign, at: datetime | None = None) -> list[LocalWindow]:
    """Every stage with its window in the campaign's time zone."""
    spec = spec_of(campaign)
    at = at or clock.now()
    return [
        LocalWindow(
            s.name, s.title, spec.to_local(s.opens_at), spec.to_local(s.closes_at), is_open(s, at)
        )
        for s in list_stages(session, campaign.id or 0)
    ]


def describe(campaign: Campaign) -> dict[str, Any]:
    spec = spec_of(campaign)
    return {
        "awards": {"main": spec.awards.main, "finalist": spec.awards.finalist},
        "shortlist": {"min": spec.shortlist.min, "max": spec.shortlist.max},
    }


# --- the due instants (scheduled steps) --------------------------------------------------------


def desired_steps(session: Session, campaign: Campaign) -> list[tuple[str, str, StepKind, int | None, datetime]]:
    """(key, stage, kind, param, due_at) for every step the calendar implies."""
    spec = spec_of(campaign)
    out: list[tuple[str, str, StepKind, int | None, datetime]] = []
    for stage in list_stages(session, campaign.id or 0):
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
    campaign = get_campaign_by_id(session, campaign_id)
    spec = spec_of(campaign)
    titles = {s.name: s.title for s in list_stages(session, campaign_id)}
    return [
        UpcomingStep(s.key, s.stage, titles.get(s.stage, s.stage), StepKind(s.kind), spec.to_local(s.due_at),
                     spec.to_local(s.retry_at) if s.retry_at else None, s.last_error)
        for s in pending_steps(session, campaign_id, limit)
    ]


# --- committee control: every act audited with who and why -------------------------------------


def local_instant(value: str, zone: str) -> datetime:
    """An ISO date-time typed by a person (CLI, dashboard); without an offset it is wall-clock
    time in the campaign's zone."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a date-time like 2021-06-02T18:00",
                               message_zh="请填写正确的日期和时间（北京时间）") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))


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
    stage = get_stage(session, campaign_id, name)
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
    rebuild_steps(session, get_campaign_by_id(session, campaign_id))
    _notify_calendar_changed(session)
    return stage


def open_stage(
    session: Session, campaign_id: int, name: StageName | str, *, actor: Actor, reason: str | None = None,
    until: datetime | None = None,
) -> Stage:
    """Open a stage by hand now (its open step runs at the next tick). A stage already closed
    needs ``until``, its new closing instant."""
    _required_reason(reason)
    stage = get_stage(session, campaign_id, name)
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
    stage = get_stage(session, campaign_id, name)
    now = clock.now()
    if stage.closes_at <= now:
        return stage
    return move_window(session, campaign_id, name, actor=actor, reason=reason,
                       opens_at=min(stage.opens_at, now), closes_at=now)


def grant_extension(
    session: Session, nomination_id: int, *, until: datetime, reason: str, actor: Actor
) -> Nomination:
    """A personal extension of the nomination deadline for one draft (honoured by the clock guard)."""
    if not reason or not reason.strip():
        raise ValidationFailed("an extension needs a reason", message_zh="延期须说明理由")
    nomination = session.get(Nomination, nomination_id)
    if nomination is None:
        raise NotFound(f"nomination {nomination_id} not found")
    if nomination.state != State.DRAFT:
        raise ValidationFailed(f"nomination {nomination_id} is {nomination.state}; only a draft can be extended",
                               message_zh="只有未提交的申报可以延期")
    until = ensure_utc(until)
    if until <= clock.now():
        raise ValidationFailed("the extension must end in the future", message_zh="延期截止时间须晚于当前时间")
    nomination.extension_until, nomination.extension_reason = until, reason.strip()
    session.add(nomination)
    audit.record(session, actor=actor, action="extension_granted", subject=f"nomination:{nomination_id}",
                 reason=reason.strip(), campaign_id=nomination.campaign_id, data={"until": until.isoformat()})
    return nomination


_calendar_listeners: list[Callable[[], None]] = []


def on_calendar_changed(callback: Callable[[], None]) -> None:
    """The scheduler in this process re-reads the steps after the commit of a window change."""
    if callback not in _calendar_listeners:
        _calendar_listeners.append(callback)


def _notify_calendar_changed(session: Session) -> None:
    after_commit = getattr(session, "after_commit", None)
    if after_commit is not None:
        for callback in list(_calendar_listeners):
            after_commit(callback)
