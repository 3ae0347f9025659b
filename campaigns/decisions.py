"""The commendation decision (表彰决定 / 表彰通报): the office enters its 文号 and date once the
final list is approved, then publishes it; from then the public sees the commended and the decision.

One decision per campaign. Entering again corrects the number or date until it is published; a
published decision is final (a correction is a new paper decision, not an edit here). Publishing
again changes nothing. Every act is audited in the caller's transaction.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, Session, SQLModel, select

from audit import service as audit
from config.campaign import StageName
from core import clock
from core.actor import Actor
from core.errors import InvalidTransition, NotFound, ValidationFailed
from storage.types import UTCDateTime

from . import service as campaigns

NUMBER_MAX = 64


class CommendationDecision(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", unique=True)
    #: 文号, e.g. 津人社发〔2021〕88号
    number: str = Field(max_length=NUMBER_MAX)
    #: the date the decision bears (成文日期)
    decided_on: date
    entered_by: str = Field(max_length=128)
    entered_at: datetime = Field(sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_by: str | None = Field(default=None, max_length=128)


def get_decision(session: Session, campaign_id: int) -> CommendationDecision | None:
    return session.exec(select(CommendationDecision).where(CommendationDecision.campaign_id == campaign_id)).first()


def published_decision(session: Session, campaign_id: int) -> CommendationDecision | None:
    """The decision, once published; None before."""
    decision = get_decision(session, campaign_id)
    return decision if decision is not None and decision.published_at is not None else None


def enter_decision(session: Session, campaign_id: int, *, number: str, decided_on: date,
                   actor: Actor) -> CommendationDecision:
    """Record (or correct, until published) the decision's 文号 and date."""
    number = " ".join(number.split())
    if not number:
        raise ValidationFailed("the decision needs its number", message_zh="请填写文号")
    if len(number) > NUMBER_MAX:
        raise ValidationFailed("number too long", message_zh=f"文号不超过{NUMBER_MAX}个字")
    notice = campaigns.get_stage(session, campaign_id, StageName.NOTICE)
    zone = campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id)).zone
    if decided_on < notice.closes_at.astimezone(zone).date():
        raise ValidationFailed("the decision cannot predate the end of the public notice",
                               message_zh="决定日期不能早于社会公示期满")
    decision = get_decision(session, campaign_id)
    if decision is not None and decision.published_at is not None:
        raise InvalidTransition("the decision is published", message_zh="表彰决定已发布，不能再修改")
    if decision is not None and decision.number == number and decision.decided_on == decided_on:
        return decision
    previous = {"number": decision.number, "decided_on": decision.decided_on} if decision else None
    if decision is None:
        decision = CommendationDecision(campaign_id=campaign_id, number=number, decided_on=decided_on,
                                        entered_by=str(actor), entered_at=clock.now())
    else:
        decision.number, decision.decided_on = number, decided_on
        decision.entered_by, decision.entered_at = str(actor), clock.now()
    session.add(decision)
    audit.record(session, actor=actor, action="decision_entered", subject="commendation", campaign_id=campaign_id,
                 data={"number": number, "decided_on": decided_on, "previous": previous})
    return decision


def publish_decision(session: Session, campaign_id: int, *, actor: Actor) -> CommendationDecision:
    """Publish the entered decision: /commended shows the commended and the decision from now."""
    decision = get_decision(session, campaign_id)
    if decision is None:
        raise NotFound("no decision entered", message_zh="请先录入表彰决定的文号和日期")
    if decision.published_at is not None:
        return decision
    notice = campaigns.get_stage(session, campaign_id, StageName.NOTICE)
    now = clock.now()
    if notice.closed_at is None and now < notice.closes_at:
        raise InvalidTransition("the public notice has not ended", message_zh="社会公示期未满，不能发布表彰决定")
    decision.published_at, decision.published_by = now, str(actor)
    session.add(decision)
    audit.record(session, actor=actor, action="decision_published", subject="commendation", campaign_id=campaign_id,
                 data={"number": decision.number, "decided_on": decision.decided_on})
    return decision
