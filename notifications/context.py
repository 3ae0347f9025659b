"""What a mail template is given: the campaign, the office, the nomination, the stage, as plain
dicts, and the addresses a nomination's mail goes to. Pure reads; nothing is written here."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from campaigns import service as campaigns
from config.campaign import CampaignSpec, StageName, Track
from config.settings import get_settings
from nominations.models import Nomination, NominationKind
from nominations.states import STATE_LABELS_ZH, State

TRACK_LABELS_ZH = {Track.MAIN.value: "津工精匠", Track.FINALIST.value: "津工精匠入围奖"}
KIND_LABELS_ZH = {NominationKind.UNIT.value: "单位推荐", NominationKind.SELF.value: "个人自荐"}

_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$")


def spec_for(session: Session, campaign_id: int) -> CampaignSpec:
    """The campaign file of ``campaign_id`` (raises ``NotFound`` for an unknown campaign)."""
    return campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id))


def local_text(spec: CampaignSpec, instant: datetime) -> str:
    """An instant as Beijing wall-clock text: 2021年5月31日 18:00."""
    d = spec.to_local(instant)
    return f"{d.year}年{d.month}月{d.day}日 {d:%H:%M}"


def campaign_context(spec: CampaignSpec) -> dict[str, Any]:
    return {
        "campaign": {"name": spec.name, "award_name": spec.award_name, "edition": spec.edition,
                     "slug": spec.slug},
        "office": {
            "name": spec.office.name,
            "address": spec.office.address,
            "email": spec.office.email,
            "contacts": [c.model_dump() for c in spec.office.contacts],
        },
    }


def status_url(nomination: Nomination) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/status/{nomination.token}"


def voting_url() -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/vote"


def nomination_context(session: Session, nomination: Nomination, spec: CampaignSpec) -> dict[str, Any]:
    unit = campaigns.get_unit_cached(session, nomination.unit_id) if nomination.unit_id else None
    state = State(nomination.state)
    name = nomination.name or "（未填写姓名）"
    if nomination.kind == NominationKind.UNIT and unit is not None:
        salutation = f"{unit.name}、{name}同志"
    else:
        salutation = f"{name}同志"
    return {
        **campaign_context(spec),
        "nomination": {
            "id": nomination.id,
            "name": name,
            "kind": str(nomination.kind),
            "kind_zh": KIND_LABELS_ZH.get(str(nomination.kind), str(nomination.kind)),
            "employer": nomination.employer or "",
            "position": nomination.position or "",
            "state": state.value,
            "state_zh": STATE_LABELS_ZH[state],
            "track": nomination.track or "",
            "track_zh": TRACK_LABELS_ZH.get(nomination.track or "", "正式候选人"),
            "unit_name": unit.name if unit else "",
        },
        "salutation": salutation,
        "status_url": status_url(nomination),
    }


def stage_context(session: Session, campaign_id: int, stage_name: StageName | str,
                  spec: CampaignSpec) -> dict[str, Any]:
    stage = campaigns.get_stage(session, campaign_id, stage_name)
    description = next((s.description for s in spec.stages if s.name == stage.name), "")
    return {
        "stage": {
            "name": stage.name,
            "title": stage.title,
            "opens_local": local_text(spec, stage.opens_at),
            "closes_local": local_text(spec, stage.closes_at),
            "description": description,
        }
    }


def recipients_of(session: Session, nomination: Nomination) -> list[str]:
    """The applicant. (The nominating unit's contact gets a mail of its own with the unit link:
    ``notifications.unit_mail``.)"""
    return clean_addresses([nomination.applicant_email])


def clean_addresses(addresses: Iterable[str | None]) -> list[str]:
    """Plain addresses only: anything that could break out of a header (CR, LF, commas,
    angle brackets) is dropped rather than sent."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in addresses:
        address = (raw or "").strip()
        if not _ADDRESS.match(address) or address.lower() in seen:
            continue
        seen.add(address.lower())
        out.append(address)
    return out
