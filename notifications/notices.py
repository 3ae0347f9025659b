"""Notices the scheduler and the stages package send on their own initiative: a stage has opened
or closed (voting opened: the shortlisted get the voting notice), a draft's deadline is near,
and alerts to the committee office. Each is queued once, however often it is asked for."""

from __future__ import annotations

import hashlib
from typing import Literal

from sqlmodel import Session, col, select

from campaigns import service as campaigns
from config.campaign import StageName
from core.errors import ValidationFailed
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import FINAL_STATES, State
from notifications.context import (
    campaign_context,
    local_text,
    nomination_context,
    recipients_of,
    spec_for,
    stage_context,
    voting_url,
)
from notifications.models import MailTemplate, OutboxMail
from notifications.queue import is_queued, queue_mail


def queue_reminder(session: Session, nomination: Nomination, days_left: int) -> OutboxMail | None:
    """Remind the applicant of an unsubmitted draft that the deadline is ``days_left`` days away.
    Once per (nomination, days_left); None if the nomination is no longer a draft or has no
    address."""
    if State(nomination.state) is not State.DRAFT:
        return None
    spec = spec_for(session, nomination.campaign_id)
    stage = campaigns.get_stage(session, nomination.campaign_id, StageName.NOMINATION)
    deadline = campaigns.submission_deadline(stage, spec, nomination.extension_until)
    context = {
        **nomination_context(session, nomination, spec),
        "days_left": days_left,
        "deadline_local": local_text(spec, deadline),
        "missing": [p.message_zh for p in nominations.form_problems(nomination, spec)],
    }
    if not nomination.name:
        context["nomination"]["name"] = ""
    return queue_mail(
        session,
        key=f"reminder:n{nomination.id}:d{days_left}",
        template=MailTemplate.DEADLINE_REMINDER,
        recipients=recipients_of(session, nomination),
        context=context,
        campaign_id=nomination.campaign_id,
        nomination_id=nomination.id,
    )


def queue_stage_notice(
    session: Session, campaign_id: int, stage: StageName | str, which: Literal["opened", "closed"]
) -> int:
    """Tell the applicants concerned that ``stage`` has opened or closed; returns how many mails
    were newly queued (repeating the call queues nothing more).

    Concerned: every nomination of the campaign not yet in a final state; when voting opens, the
    shortlisted candidates get the voting notice with its link instead."""
    if which not in ("opened", "closed"):
        raise ValidationFailed(f"which must be 'opened' or 'closed', not {which!r}")
    stage_name = StageName(str(stage))
    spec = spec_for(session, campaign_id)
    stage_ctx = stage_context(session, campaign_id, stage_name, spec)
    template = MailTemplate.STAGE_OPENED if which == "opened" else MailTemplate.STAGE_CLOSED
    live = [s.value for s in State if s not in FINAL_STATES]
    if stage_name is StageName.VOTING and which == "opened":
        template, live = MailTemplate.VOTING_OPEN, [State.SHORTLISTED.value]
    rows = session.exec(
        select(Nomination).where(Nomination.campaign_id == campaign_id, col(Nomination.state).in_(live))
        .order_by(col(Nomination.id))
    ).all()
    queued = 0
    for nomination in rows:
        context = {**nomination_context(session, nomination, spec), **stage_ctx, "voting_url": voting_url()}
        key = f"stage:c{campaign_id}:{stage_name.value}:{which}:n{nomination.id}"
        if is_queued(session, key):
            continue
        if queue_mail(session, key=key, template=template, recipients=recipients_of(session, nomination),
                      context=context, campaign_id=campaign_id, nomination_id=nomination.id):
            queued += 1
    return queued


def queue_committee_alert(
    session: Session, campaign_id: int, subject: str, body: str, *, key: str | None = None
) -> OutboxMail | None:
    """A notice to the committee office (``spec.office.email``). The same alert (same subject and
    body, or the same ``key``) is queued once."""
    if not subject.strip():
        raise ValidationFailed("a committee alert needs a subject")
    spec = spec_for(session, campaign_id)
    if key is None:
        digest = hashlib.sha256(f"{subject}\n{body}".encode()).hexdigest()[:24]
        key = f"alert:c{campaign_id}:{digest}"
    context = {**campaign_context(spec), "alert_subject": subject.strip(), "alert_body": body.strip()}
    return queue_mail(session, key=key, template=MailTemplate.COMMITTEE_ALERT, recipients=[spec.office.email],
                      context=context, campaign_id=campaign_id)
