"""What an applicant does through their link that moves the nomination through the state machine
(submit, withdraw), and the status page's view of it, which includes the transition history."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from campaigns import service as campaigns
from config.campaign import CampaignSpec
from core import clock
from core.actor import Actor
from nominations import attachments, drafts
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import State
from workflow import queries
from workflow import service as workflow
from workflow.machine import Event
from workflow.models import TransitionRecord


def submit(session: Session, nomination: Nomination) -> TransitionRecord | None:
    assert nomination.id is not None
    # the public pages show the photo: the applicant's own submission needs one (a draft may lack it)
    missing_photo = nominations.photo_problems(nomination) if nomination.state == State.DRAFT else []
    if missing_photo:
        spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, nomination.campaign_id))
        if clock.received() < drafts.deadline_of(session, nomination, spec):  # late: the deadline says so
            nominations.refuse(nominations.form_problems(nomination, spec) + missing_photo)
    event = Event.RESUBMIT if nomination.state == State.RETURNED else Event.SUBMIT
    record = workflow.transition(session, nomination.id, event, actor=Actor.applicant(),
                                 expected_version=nomination.version)
    session.refresh(nomination)
    return record


def withdraw(session: Session, nomination: Nomination, reason: str | None) -> TransitionRecord | None:
    assert nomination.id is not None
    record = workflow.transition(session, nomination.id, Event.WITHDRAW, actor=Actor.applicant(), reason=reason)
    session.refresh(nomination)
    return record


def status_view(session: Session, nomination: Nomination, spec: CampaignSpec) -> dict[str, Any]:
    """Everything the status page and the API show an applicant."""
    assert nomination.id is not None
    deadline = drafts.deadline_of(session, nomination, spec)
    now = clock.now()
    draft = nomination.state in (State.DRAFT, State.RETURNED)
    if nomination.state == State.RETURNED and nomination.extension_until is not None:
        deadline = nomination.extension_until
    history = queries.history(session, nomination.id)
    returns = [r for r in history if r.event == Event.RETURN.value]
    return {
        "nomination": nomination,
        "history": history,
        "returned_items": returns[-1].reason if returns and nomination.state == State.RETURNED else None,
        "attachments": attachments.attachments_of(session, nomination.id),
        "problems": nominations.form_problems(nomination, spec) + nominations.photo_problems(nomination)
        if draft else [],
        "deadline": deadline,
        "editable": draft and now < deadline,
        "seconds_left": max(0, int((deadline - now).total_seconds())),
        "units": campaigns.list_units(session, nomination.campaign_id),
    }
