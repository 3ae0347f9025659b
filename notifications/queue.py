"""Writing one mail to the outbox: rendered now, in the caller's transaction, once per
idempotency key. Every kind of mail (transition, notice, alert, vote code) goes through
``queue_mail``. Nothing here commits and nothing here talks to a mail server."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from config.campaign import StageName
from core import clock
from notifications import wake
from notifications.context import clean_addresses
from notifications.models import MailStatus, MailTemplate, OutboxMail, message_id_for
from notifications.render import render


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
    addresses = clean_addresses(recipients)
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
    wake.wake_after_commit(session)
    if not fetch:  # the transition listener needs no row back: save the query
        return None
    return session.exec(select(OutboxMail).where(OutboxMail.idempotency_key == key)).one()


def is_queued(session: Session, key: str) -> bool:
    """Whether a mail with this idempotency key is in the outbox already (any status)."""
    return session.exec(select(OutboxMail.id).where(OutboxMail.idempotency_key == key)).first() is not None


@functools.cache
def _insert_ignoring_duplicates(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING, built once per dialect."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = OutboxMail.__table__  # type: ignore[attr-defined]
    return insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
