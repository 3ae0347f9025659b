"""Decide now, announce later: decision mails held until their stage is announced.

A decision of a stage listed in the campaign's ``rules.hold_decisions_until_announced`` is
queued ``held`` (``hold_for`` says so) until ``announce_stage`` releases it: called by the
stages package when the stage closes, by the committee, or by ``release_due`` on the sender's
pass once a scheduled announcement has come or the stage has closed. Nothing here commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns import service as campaigns
from config.campaign import CampaignSpec, StageName
from core import clock
from core.actor import Actor
from core.errors import NotFound
from notifications import wake
from notifications.models import MailStatus, OutboxMail, StageAnnouncement
from workflow.machine import Event

#: the stage whose decision an event is (for "decide now, announce later")
DECISION_STAGE: dict[Event, StageName] = {
    Event.PASS_SCREENING: StageName.SCREENING,
    Event.REJECT: StageName.SCREENING,
    Event.SHORTLIST: StageName.SCREENING,
    Event.UNSHORTLIST: StageName.SCREENING,
    Event.PASS_OVER: StageName.SCREENING,
    Event.VET: StageName.REVIEW,
    Event.NOT_SELECT: StageName.REVIEW,
    Event.RECONSIDER: StageName.REVIEW,
    Event.FAIL_VETTING: StageName.REVIEW,
}

# session.info key: the announcements already looked up in this session
_ANNOUNCED = "jingong_announced"


def hold_for(session: Session, campaign_id: int, event: Event, spec: CampaignSpec) -> StageName | None:
    """The stage whose announcement this event's mail must wait for, or None to send it now."""
    stage_name = DECISION_STAGE.get(event)
    if stage_name is None or stage_name not in spec.rules.hold_decisions_until_announced:
        return None
    if is_announced(session, campaign_id, stage_name):
        return None
    stage = campaigns.get_stage(session, campaign_id, stage_name)
    if stage.closed_at is not None:
        return None  # a late decision of a stage already closed goes out at once
    return stage_name


def is_announced(session: Session, campaign_id: int, stage: StageName | str) -> bool:
    # asked for every decision mail: remembered for the session (announce_stage updates it)
    known: dict[tuple[int, str], bool] = session.info.setdefault(_ANNOUNCED, {})
    key = (campaign_id, str(stage))
    if key not in known:
        query = select(StageAnnouncement.id).where(
            StageAnnouncement.campaign_id == campaign_id, StageAnnouncement.stage == str(stage)
        )
        known[key] = session.exec(query).first() is not None
    return known[key]


def announce_stage(
    session: Session, campaign_id: int, stage_name: StageName | str, actor: Actor, *, at: datetime | None = None
) -> int:
    """The office publishes ``stage_name``'s decisions: its held mails are released (now, or from
    ``at`` on when the announcement is scheduled for later) and later decisions of the stage are
    no longer held. Audited; repeating it releases only what is still held. Returns how many
    mails were released or scheduled. The stages package calls it when the stage closes."""
    stage = StageName(str(stage_name))
    campaigns.get_campaign_by_id(session, campaign_id)
    now = clock.now()
    if at is not None and at > now:
        return _schedule_release(session, campaign_id, stage, actor, at)
    if not is_announced(session, campaign_id, stage):
        session.add(StageAnnouncement(campaign_id=campaign_id, stage=stage.value, announced_at=now,
                                      announced_by=str(actor)))
        session.info.setdefault(_ANNOUNCED, {})[(campaign_id, stage.value)] = True
    count = release_held(session, now, col(OutboxMail.campaign_id) == campaign_id,
                         col(OutboxMail.hold_stage) == stage.value)
    audit.record(session, actor=actor, action="mail.announce", subject=f"stage:{stage.value}",
                 campaign_id=campaign_id, data={"released": count})
    return count


def _schedule_release(session: Session, campaign_id: int, stage: StageName, actor: Actor, at: datetime) -> int:
    """Mark the stage's held mails to be released from ``at`` on (``release_due`` does it)."""
    result = session.execute(
        update(OutboxMail)
        .where(col(OutboxMail.campaign_id) == campaign_id, col(OutboxMail.hold_stage) == stage.value,
               col(OutboxMail.status) == MailStatus.HELD.value)
        .values(release_after=at)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    audit.record(session, actor=actor, action="mail.announce_scheduled", subject=f"stage:{stage.value}",
                 campaign_id=campaign_id, data={"at": at.isoformat(), "mails": count})
    return count


def release_due(session: Session, now: datetime | None = None) -> int:
    """Reconcile: release held mails whose scheduled announcement has come, and those of a stage
    that has closed (the campaign file holds decisions until the announcement *or* the close)."""
    now = now or clock.now()
    count = release_held(session, now, col(OutboxMail.release_after) <= now)
    closed = session.exec(
        select(OutboxMail.campaign_id, OutboxMail.hold_stage).where(
            OutboxMail.status == MailStatus.HELD.value, col(OutboxMail.hold_stage).is_not(None),
            col(OutboxMail.release_after).is_(None),
        ).distinct()
    ).all()
    for campaign_id, stage_name in closed:
        if campaign_id is None or stage_name is None:
            continue
        try:
            stage = campaigns.get_stage(session, campaign_id, stage_name)
        except NotFound:
            continue
        if stage.closed_at is not None and stage.closed_at <= now:
            count += announce_stage(session, campaign_id, stage_name, Actor.system("mail-sender"))
    return count


def release_held(session: Session, now: datetime, *conditions: Any) -> int:
    """Held mails matching ``conditions`` become queued and due now; returns how many."""
    result = session.execute(
        update(OutboxMail)
        .where(col(OutboxMail.status) == MailStatus.HELD.value, *conditions)
        .values(status=MailStatus.QUEUED.value, next_attempt_at=now, release_after=None)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        wake.wake_after_commit(session)
    return count
