"""Notifications: what to tell whom, written to the outbox in the caller's transaction.

The public face of the package:

- ``install()`` registers ``queue_transition_mail`` with ``workflow.hooks``: every state change
  writes its mail rows in the same transaction (no mail without a committed change, no change
  without its mail). Recipients: the applicant and, for unit nominations, the unit's contact;
  an objection also alerts the office.
- Decide now, announce later: a decision of a stage listed in the campaign's
  ``rules.hold_decisions_until_announced`` is queued ``held`` until
  ``announce_stage(session, campaign_id, stage, actor)`` (called by the stages package when the
  stage closes, or by the committee) releases it.
- Stage notices for the scheduler: ``queue_stage_notice``, ``queue_reminder``,
  ``queue_committee_alert``.
- Committee control: ``set_outbox_hold``, ``release``, ``resend``, ``list_mail``, ``counts_by_status``.

Nothing here commits and nothing here talks to a mail server (``notifications.sender`` does).
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns import service as campaigns
from config.campaign import CampaignSpec, StageName, Track
from config.settings import get_settings
from core import clock
from core.actor import Actor
from core.errors import InvalidTransition, NotFound, ValidationFailed
from nominations import service as nominations
from nominations.models import Nomination, NominationKind
from nominations.states import FINAL_STATES, STATE_LABELS_ZH, State
from notifications.models import (
    MailStatus,
    MailTemplate,
    OutboxControl,
    OutboxMail,
    StageAnnouncement,
    message_id_for,
)
from notifications.render import render
from workflow import hooks
from workflow.machine import EVENT_LABELS_ZH, Event
from workflow.models import TransitionRecord

#: the stage whose decision an event is (for "decide now, announce later")
DECISION_STAGE: dict[Event, StageName] = {
    Event.PASS_SCREENING: StageName.SCREENING,
    Event.REJECT: StageName.SCREENING,
    Event.SHORTLIST: StageName.SCREENING,
    Event.UNSHORTLIST: StageName.SCREENING,
    Event.PASS_OVER: StageName.SCREENING,
    Event.VET: StageName.REVIEW,
    Event.NOT_SELECT: StageName.REVIEW,
    Event.FAIL_VETTING: StageName.REVIEW,
}

TRACK_LABELS_ZH = {Track.MAIN.value: "津工精匠", Track.FINALIST.value: "津工精匠入围奖"}
KIND_LABELS_ZH = {NominationKind.UNIT.value: "单位推荐", NominationKind.SELF.value: "个人自荐"}
CONTROL_ROW_ID = 1


# --- context -----------------------------------------------------------------------------------


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
    """The applicant, and the nominating unit's contact for unit nominations."""
    found: list[str | None] = [nomination.applicant_email]
    if nomination.kind == NominationKind.UNIT and nomination.unit_id:
        unit = campaigns.get_unit_cached(session, nomination.unit_id)
        if unit is not None:
            found.append(unit.contact_email)
    return _clean_addresses(found)


_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$")


def _clean_addresses(addresses: Iterable[str | None]) -> list[str]:
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


# --- queueing ----------------------------------------------------------------------------------


def queue_mail(
    session: Session,
    *,
    key: str,
    template: MailTemplate,
    recipients: Iterable[str | None],
    context: dict[str, Any],
    campaign_id: int | None = None,
    nomination_id: int | None = None,
    transition_id: int | None = None,
    hold_stage: StageName | str | None = None,
    hold_reason: str | None = None,
    fetch: bool = True,
) -> OutboxMail | None:
    """Render ``template`` now and write one outbox row, unless a row with ``key`` exists already
    (then that row is returned unchanged). Returns None when there is nobody to send it to.
    A template error raises here, inside the caller's transaction."""
    addresses = _clean_addresses(recipients)
    if not addresses:
        return None
    rendered = render(template, context)
    now = clock.now()
    held = hold_stage is not None
    values: dict[str, Any] = {
        "idempotency_key": key,
        "campaign_id": campaign_id,
        "nomination_id": nomination_id,
        "transition_id": transition_id,
        "template": template.value,
        "recipients": addresses,
        "context": context,
        "subject": rendered.subject,
        "text_body": rendered.text,
        "html_body": rendered.html,
        "status": (MailStatus.HELD if held else MailStatus.QUEUED).value,
        "attempts": 0,
        "next_attempt_at": now,
        "refused": {},
        "message_id": message_id_for(key),
        "resends": 0,
        "hold_stage": str(hold_stage) if held else None,
        "hold_reason": hold_reason if held else None,
        "created_at": now,
    }
    # Values go through the column types (JSON, UTCDateTime) as with the ORM.
    session.execute(_insert_ignoring_duplicates(session.get_bind().dialect.name), values)
    _wake_after_commit(session)
    if not fetch:  # the transition listener needs no row back: save the query
        return None
    return session.exec(select(OutboxMail).where(OutboxMail.idempotency_key == key)).one()


@functools.cache
def _insert_ignoring_duplicates(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING, built once per dialect."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = OutboxMail.__table__  # type: ignore[attr-defined]
    return insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])


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


def queue_transition_mail(session: Session, nomination: Nomination, record: TransitionRecord) -> None:
    """The ``workflow.hooks`` listener: the applicant's mail for this state change (and the
    office's, for an objection), in the transition's own transaction."""
    event = Event(record.event)
    campaign = campaigns.get_campaign_by_id(session, nomination.campaign_id)
    spec = campaigns.spec_of(campaign)
    context = {
        **nomination_context(session, nomination, spec),
        "event": event.value,
        "event_zh": EVENT_LABELS_ZH[event],
        "reason": record.reason,
        "at_local": local_text(spec, record.at),
    }
    hold_stage = hold_for(session, nomination.campaign_id, event, spec)
    key = f"n{nomination.id}:{event.value}:t{record.id}"
    queue_mail(
        session,
        key=key,
        template=MailTemplate(event.value),
        recipients=recipients_of(session, nomination),
        context=context,
        campaign_id=nomination.campaign_id,
        nomination_id=nomination.id,
        transition_id=record.id,
        hold_stage=hold_stage,
        hold_reason=f"awaiting the announcement of the {hold_stage.value} results" if hold_stage else None,
        fetch=False,
    )
    if event is Event.OBJECT:
        queue_mail(
            session,
            key=f"{key}:office",
            template=MailTemplate.OBJECTION_RECEIVED,
            recipients=[spec.office.email],
            context=context,
            campaign_id=nomination.campaign_id,
            nomination_id=nomination.id,
            transition_id=record.id,
        )


def install() -> None:
    """Per-process wiring (``wiring.bootstrap``): queue mail on every transition."""
    hooks.on_transition(queue_transition_mail)


def uninstall() -> None:
    hooks.remove_listener(queue_transition_mail)


def queue_reminder(session: Session, nomination: Nomination, days_left: int) -> OutboxMail | None:
    """Remind the applicant of an unsubmitted draft that the deadline is ``days_left`` days away.
    Once per (nomination, days_left); None if the nomination is no longer a draft or has no
    address."""
    if State(nomination.state) is not State.DRAFT:
        return None
    campaign = campaigns.get_campaign_by_id(session, nomination.campaign_id)
    spec = campaigns.spec_of(campaign)
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
    campaign = campaigns.get_campaign_by_id(session, campaign_id)
    spec = campaigns.spec_of(campaign)
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
        if _exists(session, key):
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
    campaign = campaigns.get_campaign_by_id(session, campaign_id)
    spec = campaigns.spec_of(campaign)
    if key is None:
        digest = hashlib.sha256(f"{subject}\n{body}".encode()).hexdigest()[:24]
        key = f"alert:c{campaign_id}:{digest}"
    context = {**campaign_context(spec), "alert_subject": subject.strip(), "alert_body": body.strip()}
    return queue_mail(session, key=key, template=MailTemplate.COMMITTEE_ALERT, recipients=[spec.office.email],
                      context=context, campaign_id=campaign_id)


def _exists(session: Session, key: str) -> bool:
    return session.exec(select(OutboxMail.id).where(OutboxMail.idempotency_key == key)).first() is not None


# --- decide now, announce later ----------------------------------------------------------------


def is_announced(session: Session, campaign_id: int, stage: StageName | str) -> bool:
    # asked for every decision mail: remembered for the session (announce_stage updates it)
    known: dict[tuple[int, str], bool] = session.info.setdefault("jingong_announced", {})
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
    if not is_announced(session, campaign_id, stage):
        session.add(StageAnnouncement(campaign_id=campaign_id, stage=stage.value, announced_at=now,
                                      announced_by=str(actor)))
        session.info.setdefault("jingong_announced", {})[(campaign_id, stage.value)] = True
    count = _release_where(session, now, col(OutboxMail.campaign_id) == campaign_id,
                           col(OutboxMail.hold_stage) == stage.value)
    audit.record(session, actor=actor, action="mail.announce", subject=f"stage:{stage.value}",
                 campaign_id=campaign_id, data={"released": count})
    return count


def release(
    session: Session, *, actor: Actor, mail_id: int | None = None, all_held: bool = False,
    reason: str | None = None,
) -> int:
    """Release one held mail, or every held mail (the committee's override). Audited."""
    if (mail_id is None) == (not all_held):
        raise ValidationFailed("release needs either a mail id or all_held")
    now = clock.now()
    if mail_id is not None:
        mail = get_mail(session, mail_id)
        if mail.status != MailStatus.HELD:
            raise InvalidTransition(f"mail {mail_id} is {mail.status.value}, not held")
        count = _release_where(session, now, col(OutboxMail.id) == mail_id)
    else:
        count = _release_where(session, now)
    audit.record(session, actor=actor, action="mail.release", subject=f"mail:{mail_id}" if mail_id else "mail:all",
                 reason=reason, data={"released": count})
    return count


def release_due(session: Session, now: datetime | None = None) -> int:
    """Reconcile: release held mails whose scheduled announcement has come, and those of a stage
    that has closed (the campaign file holds decisions until the announcement *or* the close)."""
    now = now or clock.now()
    count = _release_where(session, now, col(OutboxMail.release_after) <= now)
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
            released = announce_stage(session, campaign_id, stage_name, Actor.system("mail-sender"))
            count += released
    return count


def _release_where(session: Session, now: datetime, *conditions: Any) -> int:
    result = session.execute(
        update(OutboxMail)
        .where(col(OutboxMail.status) == MailStatus.HELD.value, *conditions)
        .values(status=MailStatus.QUEUED.value, next_attempt_at=now, release_after=None)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        _wake_after_commit(session)
    return count


# --- committee control -------------------------------------------------------------------------


def get_control(session: Session) -> OutboxControl:
    control = session.get(OutboxControl, CONTROL_ROW_ID)
    return control or OutboxControl(id=CONTROL_ROW_ID, held=False)


def outbox_held(session: Session) -> bool:
    control = session.get(OutboxControl, CONTROL_ROW_ID)
    return bool(control and control.held)


def set_outbox_hold(session: Session, held: bool, *, actor: Actor, reason: str | None = None) -> bool:
    """Hold (nothing leaves) or release the whole outbox. Audited. Returns whether it changed."""
    control = session.get(OutboxControl, CONTROL_ROW_ID, with_for_update=True)
    if control is None:
        control = OutboxControl(id=CONTROL_ROW_ID, held=False)
    if control.held == held:
        return False
    control.held, control.reason = held, reason
    control.changed_by, control.changed_at = str(actor), clock.now()
    session.add(control)
    audit.record(session, actor=actor, action="mail.hold" if held else "mail.unhold", subject="outbox",
                 reason=reason)
    if not held:
        _wake_after_commit(session)
    return True


def resend(session: Session, mail_id: int, *, actor: Actor, reason: str | None = None) -> OutboxMail:
    """Send a mail again (sent or failed), with a new Message-ID so that it is not taken for a
    duplicate. Audited."""
    mail = get_mail(session, mail_id)
    if mail.status not in (MailStatus.SENT, MailStatus.FAILED):
        raise InvalidTransition(f"mail {mail_id} is {mail.status.value}; only sent or failed mail can be resent")
    mail.resends += 1
    mail.message_id = message_id_for(mail.idempotency_key, mail.resends)
    mail.status, mail.attempts, mail.next_attempt_at = MailStatus.QUEUED, 0, clock.now()
    mail.last_error, mail.refused, mail.sent_at, mail.claimed_at = None, {}, None, None
    session.add(mail)
    audit.record(session, actor=actor, action="mail.resend", subject=f"mail:{mail_id}", reason=reason,
                 campaign_id=mail.campaign_id, data={"message_id": mail.message_id})
    _wake_after_commit(session)
    return mail


def get_mail(session: Session, mail_id: int) -> OutboxMail:
    mail = session.get(OutboxMail, mail_id)
    if mail is None:
        raise NotFound(f"mail {mail_id} not found")
    return mail


def list_mail(
    session: Session, *, status: MailStatus | None = None, nomination_id: int | None = None,
    campaign_id: int | None = None, limit: int = 100,
) -> list[OutboxMail]:
    query = select(OutboxMail).order_by(col(OutboxMail.id).desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMail.status == status.value)
    if nomination_id is not None:
        query = query.where(OutboxMail.nomination_id == nomination_id)
    if campaign_id is not None:
        query = query.where(OutboxMail.campaign_id == campaign_id)
    return list(session.exec(query))


def counts_by_status(session: Session) -> dict[MailStatus, int]:
    rows = session.exec(select(OutboxMail.status, func.count()).group_by(col(OutboxMail.status))).all()
    counts = dict.fromkeys(MailStatus, 0)
    for status, count in rows:
        counts[MailStatus(status)] = count
    return counts


def due_count(session: Session, now: datetime | None = None) -> int:
    now = now or clock.now()
    return session.exec(
        select(func.count()).select_from(OutboxMail).where(
            OutboxMail.status == MailStatus.QUEUED.value,
            or_(col(OutboxMail.next_attempt_at).is_(None), col(OutboxMail.next_attempt_at) <= now),
        )
    ).one()


# --- waking the background sender after a commit -----------------------------------------------

_wakers: list[Callable[[], None]] = []
_wakers_lock = threading.Lock()


def add_waker(callback: Callable[[], None]) -> None:
    with _wakers_lock:
        _wakers.append(callback)


def remove_waker(callback: Callable[[], None]) -> None:
    with _wakers_lock:
        if callback in _wakers:
            _wakers.remove(callback)


def wake_senders() -> None:
    with _wakers_lock:
        callbacks = list(_wakers)
    for callback in callbacks:
        callback()


def _wake_after_commit(session: Session) -> None:
    # Only a committed row may be sent: the sender is told after the commit, never before.
    after_commit = getattr(session, "after_commit", None)
    if after_commit is not None and _wakers and not session.info.get("jingong_wake_senders"):
        session.info["jingong_wake_senders"] = True
        after_commit(wake_senders)
