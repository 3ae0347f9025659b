"""The committee's control of the outbox: hold or unhold it whole, release a held mail, send one
again, and look at what is in it (lists, counts, what is due). Changes are audited; nothing
here commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, cast, func, or_, update
from sqlmodel import Session, col, select

from audit import service as audit
from core import clock
from core.actor import Actor
from core.errors import InvalidTransition, NotFound, ValidationFailed
from notifications import wake
from notifications.announce import release_held
from notifications.models import MailStatus, OutboxControl, OutboxMail, message_id_for

# the outbox control is a single row
CONTROL_ROW_ID = 1


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
        wake.wake_after_commit(session)
    return True


def release(
    session: Session, *, actor: Actor, mail_id: int | None = None, all_held: bool = False,
    reason: str | None = None,
) -> int:
    """Release one held mail, or every held mail (the committee's override). Audited."""
    if (mail_id is None) == (not all_held):
        raise ValidationFailed("release needs either a mail id or all_held")
    now = clock.now()
    campaign_id = None
    if mail_id is not None:
        mail = get_mail(session, mail_id)
        if mail.status != MailStatus.HELD:
            raise InvalidTransition(f"mail {mail_id} is {mail.status.value}, not held")
        count = release_held(session, now, col(OutboxMail.id) == mail_id)
        campaign_id = mail.campaign_id
    else:
        count = release_held(session, now)
    audit.record(session, actor=actor, action="mail.release", subject=f"mail:{mail_id}" if mail_id else "mail:all",
                 reason=reason, data={"released": count}, campaign_id=campaign_id)
    return count


def resend(session: Session, mail_id: int, *, actor: Actor, reason: str | None = None) -> OutboxMail:
    """Send a mail again (sent or failed), with a new Message-ID so that it is not taken for a
    duplicate. Audited. The status check and the resend count are one statement, so two resends
    of one mail at once queue it once (the second finds it queued and is refused)."""
    mail = get_mail(session, mail_id)
    table = OutboxMail.__table__  # type: ignore[attr-defined]
    resent = session.execute(
        update(table)
        .where(table.c.id == mail_id, table.c.status.in_([MailStatus.SENT.value, MailStatus.FAILED.value]))
        .values(resends=table.c.resends + 1, status=MailStatus.QUEUED.value, attempts=0, next_attempt_at=clock.now(),
                last_error=None, refused={}, sent_at=None, claimed_at=None)
        .returning(table.c.resends)
    ).scalar()
    if resent is None:
        session.refresh(mail)
        raise InvalidTransition(f"mail {mail_id} is {mail.status.value}; only sent or failed mail can be resent")
    session.execute(update(table).where(table.c.id == mail_id)
                    .values(message_id=message_id_for(mail.idempotency_key, int(resent))))
    session.refresh(mail)
    audit.record(session, actor=actor, action="mail.resend", subject=f"mail:{mail_id}", reason=reason,
                 campaign_id=mail.campaign_id, data={"message_id": mail.message_id})
    wake.wake_after_commit(session)
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


#: the office's own hold of one mail: released only by hand (no stage announcement frees it)
OFFICE_HOLD = "组委会暂停"


def hold(session: Session, mail_id: int, *, actor: Actor, reason: str | None = None) -> OutboxMail:
    """Keep one queued mail back until the office releases it. Audited. The status check and the
    change are one statement, so a sender that claimed it first wins and the hold is refused."""
    mail = get_mail(session, mail_id)
    table = OutboxMail.__table__  # type: ignore[attr-defined]
    changed = session.execute(
        update(table).where(table.c.id == mail_id, table.c.status == MailStatus.QUEUED.value)
        .values(status=MailStatus.HELD.value, hold_reason=OFFICE_HOLD, hold_stage=None, release_after=None)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(mail)
    if not changed:
        raise InvalidTransition(f"mail {mail_id} is {mail.status.value}; only queued mail can be held")
    audit.record(session, actor=actor, action="mail.hold_one", subject=f"mail:{mail_id}", reason=reason,
                 campaign_id=mail.campaign_id)
    return mail


def search_mail(
    session: Session, *, status: MailStatus | None = None, recipient: str | None = None,
    template: str | None = None, offset: int = 0, limit: int = 50,
) -> tuple[list[OutboxMail], int]:
    """One page of the outbox (newest first) and how many mails the filter finds in all;
    ``recipient`` matches part of an address."""
    query = select(OutboxMail)
    if status is not None:
        query = query.where(OutboxMail.status == status.value)
    if template:
        query = query.where(OutboxMail.template == template)
    if recipient:
        query = query.where(cast(col(OutboxMail.recipients), String).contains(recipient))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(OutboxMail.id).desc()).offset(offset).limit(limit))
    return list(rows), int(total)
