"""Record an act in the audit trail (inside the caller's transaction)."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from audit import chain
from audit.models import AuditEvent
from core import clock
from core.actor import Actor


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject: str = "",
    reason: str | None = None,
    campaign_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    row: dict[str, Any] = {"campaign_id": campaign_id, "at": clock.now(), "actor": str(actor), "action": action,
                           "subject": subject, "reason": reason, "data": data or {}}
    # the chain hashes the data as it will read back (JSON): tuples become lists, keys strings
    row["data"] = json.loads(json.dumps(row["data"], default=str))
    chain.append(session, campaign_id, "auditevent", [row])
    event = AuditEvent(**row)
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    campaign_id: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    """The newest events first; ``actor`` matches part of the actor's name, the rest exactly."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if campaign_id is not None:
        query = query.where(AuditEvent.campaign_id == campaign_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if actor is not None:
        query = query.where(col(AuditEvent.actor).contains(actor))
    if subject is not None:
        query = query.where(AuditEvent.subject == subject)
    return list(session.exec(query))
