"""Nominating units as parties: each unit of the plan on its own, with its quota, its contact
(person, phone, email) and its unit link.

Who decides what, when the campaign file is loaded again (``sync_from_file``):
- a unit the file lists and the office never touched takes the file's category, quota and group,
  and the file's contact fields where the file gives them;
- a unit the office edited on the dashboard keeps the office's quota and contact (``edited_by_office``);
- a unit the office added (an association) is never changed or retired by the file;
- a unit no longer in the file is retired: not offered to new nominations, kept for the ones it has,
  and offered again if the file lists it again.

The unit link: a random seed is stored; the link is a keyed hash of it (``config.secrets``), so the
database alone does not give it, and the office can show it again. A request finds the unit by the
keyed hash of the link (``link_hash``). Regenerating draws a new seed: the old link stops working.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from audit import service as audit
from campaigns.models import NominatingUnit
from config.campaign import UnitSpec
from config.secrets import keyed_hash
from core.actor import Actor
from core.errors import NotFound, ValidationFailed

#: what the office may edit on the dashboard, with the Chinese label of each field
EDITABLE = {"contact_person": "联系人", "phone": "联系电话", "contact_email": "邮箱", "quota": "推荐名额"}
#: what a new unit needs besides those
NEW_FIELDS = {"name": "单位名称", "category": "类别"}
MAX_LENGTHS = {"name": 100, "category": 50, "contact_person": 50, "phone": 50, "contact_email": 254}

_EMAIL = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+\.[^@\s<>,;:\"()\[\]\\]+$")
_PHONE = re.compile(r"^[0-9+\-()（） 转]{5,50}$")
_TOKEN = re.compile(r"^[0-9a-f]{40}$")


def link_token(unit: NominatingUnit) -> str:
    """The unit link's token (the part after ``/unit/``), made from the stored seed."""
    if not unit.link_seed:
        raise NotFound(f"unit {unit.id} has no link yet")
    return keyed_hash(f"unit-link:{unit.link_seed}", None)


def _new_seed(unit: NominatingUnit) -> None:
    unit.link_seed = secrets.token_hex(16)
    unit.link_hash = keyed_hash(f"unit-link-lookup:{link_token(unit)}", None)


def ensure_link(session: Session, unit: NominatingUnit) -> str:
    """The unit's link token, drawing its seed first if it has none."""
    if not unit.link_seed:
        _new_seed(unit)
        session.add(unit)
        session.flush()
    return link_token(unit)


def regenerate_link(session: Session, unit: NominatingUnit, *, actor: Actor) -> str:
    """A new link for the unit (audited); the old one stops working at once."""
    _new_seed(unit)
    session.add(unit)
    audit.record(session, actor=actor, action="unit_link_regenerated", subject=f"unit:{unit.id}",
                 campaign_id=unit.campaign_id, data={"name": unit.name})
    session.flush()
    return link_token(unit)


def find_by_link(session: Session, token: str) -> NominatingUnit:
    """The unit whose link is ``token``; NotFound for anything else (never says which part is wrong)."""
    unit = None
    if _TOKEN.match(token):
        digest = keyed_hash(f"unit-link-lookup:{token}", None)
        unit = session.exec(select(NominatingUnit).where(NominatingUnit.link_hash == digest)).first()
    if unit is None:
        raise NotFound("no unit with this link", message_zh="链接无效或已失效，请向组委会办公室索取新的单位链接。")
    return unit


def units_of(session: Session, campaign_id: int, *, include_retired: bool = True) -> list[NominatingUnit]:
    query = select(NominatingUnit).where(NominatingUnit.campaign_id == campaign_id)
    if not include_retired:
        query = query.where(col(NominatingUnit.retired).is_(False))
    return list(session.exec(query.order_by(col(NominatingUnit.id))))


def offered_units(session: Session, campaign_id: int) -> list[NominatingUnit]:
    """The units a new nomination may name (retired ones are not offered)."""
    return units_of(session, campaign_id, include_retired=False)


def sync_from_file(session: Session, campaign_id: int, specs: Iterable[UnitSpec]) -> None:
    """Bring the stored units in line with the campaign file, keeping what the office decided
    (see the module's docstring for the rule)."""
    stored = {u.name: u for u in units_of(session, campaign_id)}
    listed: set[str] = set()
    for spec in specs:
        listed.add(spec.name)
        unit = stored.get(spec.name)
        if unit is None:
            unit = NominatingUnit(campaign_id=campaign_id, name=spec.name, category=spec.category,
                                  quota=spec.quota)
        unit.retired = False
        if not (unit.added_by_office or unit.edited_by_office):
            unit.category, unit.quota, unit.group = spec.category, spec.quota, spec.group
            unit.contact_person = spec.contact_person or unit.contact_person
            unit.phone = spec.phone or unit.phone
            unit.contact_email = spec.contact_email or unit.contact_email
        if not unit.link_seed:
            _new_seed(unit)
        session.add(unit)
    for name, unit in stored.items():
        if name not in listed and not unit.added_by_office and not unit.retired:
            unit.retired = True
            session.add(unit)
    session.flush()


def _clean(values: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The office's input, checked; ValidationFailed names the field in Chinese."""
    out: dict[str, Any] = {}
    for field in fields:
        raw = values.get(field)
        text = (raw if isinstance(raw, str) else "" if raw is None else str(raw)).strip()
        label = EDITABLE.get(field) or NEW_FIELDS[field]
        if field == "quota":
            if not text.isdigit() or int(text) > 999:
                raise ValidationFailed(f"quota {text!r} is not a number 0-999",
                                       message_zh=f"{label}须为 0 至 999 的整数")
            out[field] = int(text)
            continue
        if len(text) > MAX_LENGTHS[field]:
            raise ValidationFailed(f"{field} is too long", message_zh=f"{label}过长（最多{MAX_LENGTHS[field]}字）")
        if field in NEW_FIELDS and not text:
            raise ValidationFailed(f"{field} is required", message_zh=f"请填写{label}")
        if field == "contact_email" and text and not _EMAIL.match(text):
            raise ValidationFailed(f"contact_email {text!r} is not an address",
                                   message_zh=f"邮箱“{text}”格式不正确")
        if field == "phone" and text and not _PHONE.match(text):
            raise ValidationFailed(f"phone {text!r} is not a phone number",
                                   message_zh=f"联系电话“{text}”格式不正确（数字、“-”、括号）")
        out[field] = text or None
    return out


def add_unit(session: Session, campaign_id: int, values: dict[str, Any], *, actor: Actor) -> NominatingUnit:
    """A unit the office adds (an association): never changed or retired by the campaign file."""
    clean = _clean(values, [*NEW_FIELDS, *EDITABLE])
    taken = session.exec(select(NominatingUnit).where(NominatingUnit.campaign_id == campaign_id,
                                                      NominatingUnit.name == clean["name"])).first()
    if taken is not None:
        raise ValidationFailed(f"unit {clean['name']!r} exists", message_zh=f"已有推荐单位“{clean['name']}”")
    unit = NominatingUnit(campaign_id=campaign_id, added_by_office=True, **clean)
    _new_seed(unit)
    session.add(unit)
    session.flush()
    audit.record(session, actor=actor, action="unit_added", subject=f"unit:{unit.id}", campaign_id=campaign_id,
                 data=dict(clean))
    return unit


def edit_unit(session: Session, unit: NominatingUnit, values: dict[str, Any], *, actor: Actor) -> dict[str, Any]:
    """The office edits a unit's contact and quota (audited, before and after); returns what changed.
    The campaign file no longer changes these for this unit."""
    clean = _clean(values, EDITABLE)
    changed = {k: [getattr(unit, k), v] for k, v in clean.items() if getattr(unit, k) != v}
    if not changed:
        return {}
    for field, (_, new) in changed.items():
        setattr(unit, field, new)
    unit.edited_by_office = True
    session.add(unit)
    audit.record(session, actor=actor, action="unit_edited", subject=f"unit:{unit.id}",
                 campaign_id=unit.campaign_id, data={"name": unit.name, "changes": changed})
    session.flush()
    return changed


def get_unit(session: Session, campaign_id: int, unit_id: int) -> NominatingUnit:
    unit = session.get(NominatingUnit, unit_id)
    if unit is None or unit.campaign_id != campaign_id:
        raise NotFound(f"unit {unit_id} not found", message_zh="没有这个推荐单位")
    return unit
