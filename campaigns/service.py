"""The campaign: store a campaign file, read its rules, its windows and its units. The stored
windows are the truth (the committee may move them); ``stages`` acts on them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from campaigns import units
from campaigns.models import Campaign, NominatingUnit, Stage
from config.campaign import CampaignSpec, StageName, parse_campaign
from core import clock
from core.errors import NotFound, ValidationFailed

_spec_cache: dict[tuple[int, str], CampaignSpec] = {}


def store_campaign(session: Session, spec: CampaignSpec, *, replace_windows: bool = False) -> Campaign:
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
    # the office's own units and edits survive a reload (the rule: campaigns/units.py)
    units.sync_from_file(session, campaign.id, spec.units)
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


def find_unit(session: Session, unit_id: int | None) -> NominatingUnit | None:
    """A nomination's unit; None for a self-nomination (no unit) or an unknown id."""
    return session.get(NominatingUnit, unit_id) if unit_id else None


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


def local_instant(value: str, zone: str) -> datetime:
    """An ISO date-time typed by a person (CLI, dashboard); without an offset it is wall-clock
    time in the campaign's zone."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a date-time like 2021-06-02T18:00",
                               message_zh="请填写正确的日期和时间（北京时间）") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))


_calendar_listeners: list[Callable[[], None]] = []


def on_calendar_changed(callback: Callable[[], None]) -> None:
    """The scheduler in this process re-reads the steps after the commit of a window change."""
    if callback not in _calendar_listeners:
        _calendar_listeners.append(callback)


def notify_calendar_changed(session: Session) -> None:
    after_commit = getattr(session, "after_commit", None)
    if after_commit is not None:
        for callback in list(_calendar_listeners):
            after_commit(callback)
