"""The mail of a state change, queued in the transition's own transaction.

``install()`` registers ``queue_transition_mail`` with ``workflow.hooks`` (``wiring.bootstrap``
calls it once per process): no mail without a committed change, no change without its mail.
Recipients: the applicant and, for unit nominations, the unit's contact; an objection also
alerts the office. A decision whose stage is not yet announced is queued held."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from nominations.models import Nomination
from notifications.announce import hold_for
from notifications.context import local_text, nomination_context, recipients_of, spec_for
from notifications.models import MailTemplate
from notifications.queue import queue_mail
from workflow import hooks
from workflow.machine import EVENT_LABELS_ZH, Event
from workflow.models import TransitionRecord


def queue_transition_mail(session: Session, nomination: Nomination, record: TransitionRecord) -> None:
    """The ``workflow.hooks`` listener: the applicant's mail for this state change (and the
    office's, for an objection), in the transition's own transaction."""
    event = Event(record.event)
    spec = spec_for(session, nomination.campaign_id)
    context = {
        **nomination_context(session, nomination, spec),
        "event": event.value,
        "event_zh": EVENT_LABELS_ZH[event],
        "reason": record.reason,
        "at_local": local_text(spec, record.at),
        "due_local": local_text(spec, nomination.extension_until) if event is Event.RETURN
        and nomination.extension_until else None,
    }
    hold_stage = hold_for(session, nomination.campaign_id, event, spec)
    key = f"n{nomination.id}:{event.value}:t{record.id}"
    links: dict[str, Any] = {"campaign_id": nomination.campaign_id, "nomination_id": nomination.id,
                             "transition_id": record.id}
    queue_mail(
        session,
        key=key,
        template=MailTemplate(event.value),
        recipients=recipients_of(session, nomination),
        context=context,
        hold_stage=hold_stage,
        hold_reason=f"awaiting the announcement of the {hold_stage.value} results" if hold_stage else None,
        fetch=False,
        **links,
    )
    if event is Event.OBJECT:
        queue_mail(session, key=f"{key}:office", template=MailTemplate.OBJECTION_RECEIVED,
                   recipients=[spec.office.email], context=context, **links)


def install() -> None:
    """Per-process wiring (``wiring.bootstrap``): queue mail on every transition."""
    hooks.on_transition(queue_transition_mail)


def uninstall() -> None:
    hooks.remove_listener(queue_transition_mail)
