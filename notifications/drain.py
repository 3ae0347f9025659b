"""The drain: one pass over the outbox, sending every due mail through a ``MailTransport``.

Never twice, nothing lost:
1. *claim* a batch in its own transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several
   senders can run; SQLite's ``BEGIN IMMEDIATE`` serialises them): status ``sending``, attempts+1,
   ``claimed_at`` = now, committed before any SMTP command;
2. send each over ONE reused connection;
3. mark it ``sent`` (or back to ``queued`` with a backoff, or ``failed`` with the server's answer)
   in a transaction of its own, right after the server's answer.
A sender killed between 2 and 3 leaves the row ``sending``; once the lease has run out another
pass takes it over and sends it again with the *same* Message-ID (derived from the idempotency
key), so the one possible repeat is recognisable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from config.settings import Settings, get_settings
from core import clock
from notifications.announce import release_due
from notifications.message import build_message, envelope_from
from notifications.models import MailStatus, OutboxMail
from notifications.outbox import outbox_held
from notifications.transports import MailTransport, Outcome, Outgoing, SendResult, transport_from_settings
from storage.db import unit_of_work

_T = OutboxMail.__table__  # type: ignore[attr-defined]


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    #: the committee holds the outbox: nothing was sent
    outbox_held: bool = False
    #: the server could not be reached; the rest waits for the next pass
    unreachable: str | None = None
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"sent {self.sent}, retry later {self.retried}, failed {self.failed}"
        if self.released:
            text += f", released {self.released} held"
        if self.outbox_held:
            text += " (the outbox is held: nothing leaves until `jingong mail unhold`)"
        if self.unreachable:
            text += f" (stopped: {self.unreachable})"
        return text

    def count(self, mail_id: int, status: MailStatus, result: SendResult) -> None:
        if status is MailStatus.SENT:
            self.sent += 1
            return
        self.failed += status is MailStatus.FAILED
        self.retried += status is MailStatus.QUEUED
        self.errors.append(f"mail {mail_id}: {result.detail}")


@dataclass(frozen=True)
class _Claimed:
    id: int
    recipients: list[str]
    subject: str
    text: str
    html: str
    message_id: str
    attempts: int


def backoff(attempts: int, settings: Settings) -> timedelta:
    """Wait before attempt ``attempts + 1``: base, 2×base, 4×base... up to the maximum."""
    seconds = settings.mail_retry_base_seconds * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, settings.mail_retry_max_seconds))


def claim(engine: Engine, limit: int, settings: Settings | None = None) -> list[_Claimed]:
    """Take up to ``limit`` due mails (queued and due, or ``sending`` past the lease) for this
    sender, committed as ``sending`` before anything is sent."""
    settings = settings or get_settings()
    now = clock.now()
    lease_cutoff = now - timedelta(seconds=settings.mail_lease_seconds)
    due = or_(
        and_(_T.c.status == MailStatus.QUEUED.value, _T.c.next_attempt_at <= now),
        and_(_T.c.status == MailStatus.SENDING.value, _T.c.claimed_at <= lease_cutoff),
    )
    query = (
        select(_T.c.id, _T.c.recipients, _T.c.subject, _T.c.text_body, _T.c.html_body, _T.c.message_id,
               _T.c.attempts)
        .where(due).order_by(_T.c.id).limit(limit)
    )
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    with unit_of_work(engine) as session:
        rows = session.execute(query).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        session.execute(
            update(_T).where(_T.c.id.in_(ids))
            .values(status=MailStatus.SENDING.value, claimed_at=now, attempts=_T.c.attempts + 1)
        )
    return [_Claimed(r.id, list(r.recipients), r.subject, r.text_body, r.html_body, r.message_id,
                     r.attempts + 1) for r in rows]


def _update_claim(row: _Claimed, **values: Any) -> Any:
    # Only the claim we hold: a sender whose lease ran out must not overwrite its successor.
    return (
        update(_T).where(_T.c.id == row.id, _T.c.status == MailStatus.SENDING.value,
                         _T.c.attempts == row.attempts)
        .values(**values)
    )


def _unclaim(engine: Engine, rows: list[_Claimed]) -> None:
    """Give back claimed mails that were never tried (the server went away)."""
    if not rows:
        return
    with engine.begin() as conn:
        for row in rows:
            conn.execute(_update_claim(row, status=MailStatus.QUEUED.value, attempts=row.attempts - 1,
                                       claimed_at=None))


def record_result(engine: Engine, row: _Claimed, result: SendResult, settings: Settings) -> MailStatus:
    now = clock.now()
    values: dict[str, object]
    if result.outcome is Outcome.SENT:
        status = MailStatus.SENT
        refusal = "; ".join(f"{a}: {why}" for a, why in result.refused.items())
        values = {"sent_at": now, "refused": result.refused,
                  "last_error": f"some recipients refused: {refusal}" if refusal else None}
    elif result.outcome is Outcome.PERMANENT:
        status = MailStatus.FAILED
        values = {"last_error": result.detail}
    elif row.attempts >= settings.mail_max_attempts:
        status = MailStatus.FAILED
        values = {"last_error": f"gave up after {row.attempts} attempts; last: {result.detail}"}
    else:
        status = MailStatus.QUEUED
        values = {"last_error": result.detail, "next_attempt_at": now + backoff(row.attempts, settings)}
    with engine.begin() as conn:
        conn.execute(_update_claim(row, status=status.value, claimed_at=None, **values))
    return status


def _may_send(engine: Engine, report: DrainReport) -> bool:
    """Release what is due to be released; False when the committee holds the outbox."""
    with unit_of_work(engine) as session:
        if outbox_held(session):
            report.outbox_held = True
            return False
        report.released += release_due(session)
    return True


async def _send(transport: MailTransport, row: _Claimed, sender: str, settings: Settings) -> SendResult:
    data = build_message(
        subject=row.subject, text=row.text, html=row.html, recipients=row.recipients,
        message_id=row.message_id, mail_from=settings.mail_from,
    )
    return await transport.send(Outgoing(row.id, sender, row.recipients, row.message_id, data))


async def drain_async(
    engine: Engine, transport: MailTransport, *, batch: int | None = None, settings: Settings | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DrainReport:
    """Send every due mail once (one pass), then close the transport. Each mail's mark is
    committed before the next mail is sent: a sender killed at any moment leaves at most one
    mail whose fate it did not record."""
    settings = settings or get_settings()
    batch = batch or settings.mail_batch_size
    sender = envelope_from(settings)
    report = DrainReport()
    try:
        while not (should_stop and should_stop()) and _may_send(engine, report):
            rows = claim(engine, batch, settings)
            if not rows:
                break
            for index, row in enumerate(rows):
                if should_stop and should_stop():
                    _unclaim(engine, rows[index:])
                    return report
                result = await _send(transport, row, sender, settings)
                report.count(row.id, record_result(engine, row, result, settings), result)
                if result.unreachable:
                    report.unreachable = result.detail
                    _unclaim(engine, rows[index + 1:])
                    return report
    finally:
        await transport.close()
    return report


def drain(engine: Engine, transport: MailTransport | None = None, *, batch: int | None = None,
          settings: Settings | None = None, should_stop: Callable[[], bool] | None = None) -> DrainReport:
    """One pass over the outbox from synchronous code (CLI, jobs, the background thread)."""
    settings = settings or get_settings()
    transport = transport or transport_from_settings(settings)
    return asyncio.run(drain_async(engine, transport, batch=batch, settings=settings, should_stop=should_stop))
