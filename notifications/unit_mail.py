"""The nominating unit's mail: at each state change of one of its nominations, its contact gets a
mail with the unit link and the unit's quota use, queued in the transition's own transaction and
held like the applicant's while the stage's decisions are not yet announced.

``install()`` registers ``queue_unit_mail`` with ``workflow.hooks`` (``wiring.bootstrap``)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from campaigns import service as campaigns
from campaigns import units
from config.settings import get_settings
from nominations import service as nominations
from nominations.models import Nomination
from notifications.announce import hold_for
from notifications.context import clean_addresses, local_text, nomination_context, spec_for
from notifications.models import MailTemplate
from notifications.queue import queue_mail
from workflow import hooks
from workflow.machine import EVENT_LABELS_ZH, Event
from workflow.models import TransitionRecord


def unit_url(token: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/unit/{token}"


def queue_unit_mail(session: Session, nomination: Nomination, record: TransitionRecord) -> None:
    """The ``workflow.hooks`` listener: the unit's contact hears of the change (nothing when the
    nomination names no unit or the unit has no usable address)."""
    if not nomination.unit_id:
        return
    unit = campaigns.get_unit_cached(session, nomination.unit_id)
    if unit is None or not clean_addresses([unit.contact_email]):
        return
    event = Event(record.event)
    spec = spec_for(session, nomination.campaign_id)
    used = nominations.unit_usage(session, nomination.campaign_id).get(unit.id or 0, 0)
    context: dict[str, Any] = {
        **nomination_context(session, nomination, spec),
        "event": event.value,
        "event_zh": EVENT_LABELS_ZH[event],
        "reason": record.reason,
        "at_local": local_text(spec, record.at),
        "due_local": local_text(spec, nomination.extension_until)
        if event is Event.RETURN and nomination.extension_until else None,
        "unit": {"name": unit.name, "contact_person": unit.contact_person or "", "quota": unit.quota,
                 "used": used},
        "unit_url": unit_url(units.ensure_link(session, unit)),
    }
    hold_stage = hold_for(session, nomination.campaign_id, event, spec)
    queue_mail(
        session,
        key=f"n{nomination.id}:{event.value}:t{record.id}:unit{unit.id}",
        template=MailTemplate.UNIT_CHANGE,
        recipients=[unit.contact_email],
        context=context,
        hold_stage=hold_stage,
        hold_reason=f"awaiting the announcement of the {hold_stage.value} results" if hold_stage else None,
        fetch=False,
        campaign_id=nomination.campaign_id,
        nomination_id=nomination.id,
        transition_id=record.id,
    )


def install() -> None:
    hooks.on_transition(queue_unit_mail)


def uninstall() -> None:
    hooks.remove_listener(queue_unit_mail)
