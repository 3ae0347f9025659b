"""The trail's hash chain seen whole: both chained tables (transition records live in ``workflow``,
above ``audit``), its verification, and the publication of its head at every stage close and once
a day (an audited ``chain_head_published`` record, shown on the public transparency page)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table
from sqlmodel import Session, col, select

from audit import chain
from audit import service as audit
from audit.models import AuditEvent
from campaigns.models import Campaign, Stage
from core.actor import Actor
from storage.db import unit_of_work
from workflow.models import TransitionRecord

TABLES: tuple[Table, ...] = (TransitionRecord.__table__, AuditEvent.__table__)  # type: ignore[attr-defined]
PUBLISHED = "chain_head_published"


def verify_trail(session: Session, *, campaign_id: int | None = None) -> chain.Checked:
    return chain.verify(session, TABLES, campaign_id=campaign_id)


def publish_head(session: Session, campaign_id: int, *, occasion: str) -> AuditEvent:
    """Record the head as it stands (the record itself then becomes the next link)."""
    head = chain.head(session, campaign_id)
    return audit.record(session, actor=Actor.system("ledger"), action=PUBLISHED, subject=occasion,
                        campaign_id=campaign_id, data={"chain_seq": head.seq, "head_hash": head.hash})


def publish_at_close(session: Session, campaign: Campaign, stage: Stage) -> None:
    """A stage-close listener: the head as the stage closes."""
    publish_head(session, campaign.id or 0, occasion=f"stage_close:{stage.name}")


def last_published(session: Session, campaign_id: int, limit: int = 1) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.campaign_id == campaign_id,
                                                      AuditEvent.action == PUBLISHED)
                             .order_by(col(AuditEvent.id).desc()).limit(limit)))


def publish_daily(engine: Engine, campaign_id: int, now: datetime) -> bool:
    """A tick listener: publish the head once per calendar day of the campaign's zone (reads first,
    writes only when today's is missing). Returns whether it published."""
    with unit_of_work(engine, readonly=True) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            return False
        zone = ZoneInfo(campaign.timezone)
        last = last_published(session, campaign_id)
        today = now.astimezone(zone).date()
        if last and last[0].at.astimezone(zone).date() >= today:
            return False
    with unit_of_work(engine) as session:
        last = last_published(session, campaign_id)
        if last and last[0].at.astimezone(zone).date() >= today:
            return False  # another instance published meanwhile
        publish_head(session, campaign_id, occasion=f"daily:{today.isoformat()}")
    return True
