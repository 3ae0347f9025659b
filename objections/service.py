"""Objections to formal candidates during the public notice (社会公示).

Lodging one stores it, puts the candidate ``on_hold`` through the transition service (the facts
are the reason; the office is alerted by the notifications hook) and acknowledges it by email
when the contact is an address. The nominee may reply through their status page by the reply
deadline; the committee rules: uphold (→ disqualified) or dismiss (→ vetted again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from accounts.models import User
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import StageName
from core import clock
from core.actor import Actor, ActorKind
from core.errors import GuardFailed, InvalidTransition, NotFound, ValidationFailed
from nominations import service as nominations
from nominations.states import State
from notifications import context as mail_context
from notifications import queue as mail_queue
from notifications.models import MailTemplate
from objections import receipts
from objections.models import Objection, ObjectionStatus
from workflow import bulk
from workflow import service as workflow
from workflow.machine import Event

REPLY_DAYS = 5
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: candidates one may object to
OBJECTABLE = (State.VETTED, State.ON_HOLD)


@dataclass(frozen=True)
class Lodged:
    objection: Objection
    #: the objector's receipt number (shown once; only its hash is kept)
    receipt: str


def lodge(session: Session, campaign: Campaign, nomination_id: int, *, name: str, contact: str,
          facts: str) -> Lodged:
    name, contact, facts = name.strip(), contact.strip(), facts.strip()
    if not name or not contact or not facts:
        raise ValidationFailed("name, contact and facts are all required", message_zh="请填写姓名、联系方式和异议事实")
    stage = campaigns.get_stage(session, campaign.id or 0, StageName.NOTICE)
    now = clock.received()
    if not campaigns.is_open(stage, now):
        raise GuardFailed("objections are accepted only while the public notice is open",
                          message_zh="当前不在公示期内，不受理异议")
    # objections to one candidate arrive together: they take turns on its row, so none of them
    # meets the transition's compare-and-set as a conflict
    nomination = nominations.get(session, nomination_id, lock=True)
    if nomination.campaign_id != campaign.id or nomination.state not in OBJECTABLE:
        raise NotFound(f"nomination {nomination_id} is not a formal candidate on the notice",
                       message_zh="该人员不在公示名单中")
    objection = Objection(campaign_id=campaign.id or 0, nomination_id=nomination_id, name=name, contact=contact,
                          facts=facts, lodged_at=now, reply_due_at=now + timedelta(days=REPLY_DAYS))
    receipt = receipts.issue(objection)
    session.add(objection)
    session.flush()
    workflow.transition(session, nomination_id, Event.OBJECT, actor=Actor(ActorKind.PUBLIC, f"objector:{name}"),
                        reason=facts, data={"objection_id": objection.id})
    _acknowledge(session, campaign, objection, nomination.name or "", receipt)
    return Lodged(objection, receipt)


def _acknowledge(session: Session, campaign: Campaign, objection: Objection, candidate: str, receipt: str) -> None:
    if not EMAIL_RE.match(objection.contact):
        return
    spec = campaigns.spec_of(campaign)
    context = {
        **mail_context.campaign_context(spec), "candidate": candidate, "objection_id": objection.id,
        "objector": objection.name, "lodged_local": mail_context.local_text(spec, objection.lodged_at),
        "receipt": receipt,
    }
    mail_queue.queue_mail(session, key=f"objection:{objection.id}:ack", template=MailTemplate.OBJECTION_ACK,
                    recipients=[objection.contact], context=context, campaign_id=campaign.id,
                    nomination_id=objection.nomination_id)


def list_objections(session: Session, campaign_id: int, status: ObjectionStatus | None = None) -> list[Objection]:
    query = select(Objection).where(Objection.campaign_id == campaign_id).order_by(col(Objection.id))
    if status is not None:
        query = query.where(Objection.status == status.value)
    return list(session.exec(query))


def get(session: Session, objection_id: int) -> Objection:
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise NotFound(f"objection {objection_id} not found")
    return objection


def of_nomination(session: Session, nomination_id: int) -> list[Objection]:
    query = select(Objection).where(Objection.nomination_id == nomination_id).order_by(col(Objection.id))
    return list(session.exec(query))


def reply(session: Session, nomination_id: int, objection_id: int, text: str) -> Objection:
    """The nominee's answer (from their status page), before the reply deadline."""
    objection = get(session, objection_id)
    if objection.nomination_id != nomination_id:
        raise NotFound(f"objection {objection_id} not found")
    if objection.status != ObjectionStatus.OPEN:
        raise InvalidTransition("the committee has ruled on this objection", message_zh="组委会已作出处理，不能再答复")
    if clock.received() >= objection.reply_due_at:
        raise GuardFailed("the reply deadline has passed", message_zh="答复期限已过")
    if not text.strip():
        raise ValidationFailed("the reply is empty", message_zh="请填写答复内容")
    objection.nominee_reply, objection.replied_at = text.strip(), clock.now()
    session.add(objection)
    session.flush()
    return objection


def rule(session: Session, user: User, objection_id: int, *, uphold: bool, reason: str | None) -> Objection:
    """Uphold (→ disqualified) or dismiss (→ back to vetted) through the transition service. One
    ruling settles every open objection on that candidate."""
    objection = get(session, objection_id)
    if objection.status != ObjectionStatus.OPEN:
        raise InvalidTransition(f"objection {objection_id} is already {objection.status}",
                                message_zh="该异议已处理")
    event = Event.UPHOLD_OBJECTION if uphold else Event.DISMISS_OBJECTION
    bulk.fire(session, user, objection.nomination_id, event, reason=reason)
    now = clock.now()
    for row in of_nomination(session, objection.nomination_id):
        if row.status == ObjectionStatus.OPEN:
            row.status = ObjectionStatus.UPHELD if uphold else ObjectionStatus.DISMISSED
            row.ruled_at, row.ruled_by, row.ruling_reason = now, user.username, reason
            session.add(row)
    session.flush()
    return objection
