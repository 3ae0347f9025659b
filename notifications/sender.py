"""The sender: drains the outbox through a ``MailTransport``.

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

Transports: ``SmtpTransport`` (aiosmtplib; STARTTLS is required when configured, never
opportunistic), ``FileTransport`` (.eml files; the embedded default without SMTP_HOST) and
``MemoryTransport`` (tests, previews).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import aiosmtplib
from sqlalchemy import Engine, and_, or_, select, update

from config.settings import Settings, SmtpSecurity, get_settings
from core import clock
from core.errors import ConfigError, JingongError
from notifications import service
from notifications.models import MailStatus, MailTemplate, OutboxMail
from notifications.render import render
from storage.db import unit_of_work

log = logging.getLogger("jingong.mail")

_T = OutboxMail.__table__  # type: ignore[attr-defined]


class Outcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"  # 4xx, connection trouble: try again later
    PERMANENT = "permanent"  # 5xx: the server will never take it


@dataclass(frozen=True)
class Outgoing:
    mail_id: int
    envelope_from: str
    recipients: list[str]
    message_id: str
    data: bytes


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    #: the server's answer (or what went wrong on the way to it)
    detail: str = ""
    #: recipients refused while the others were accepted: {address: "550 ..."}
    refused: dict[str, str] = field(default_factory=dict)
    #: the server cannot be reached at all: stop this pass, leave the rest for later
    unreachable: bool = False


class MailTransport(Protocol):
    name: str

    async def send(self, mail: Outgoing) -> SendResult: ...

    async def close(self) -> None: ...


# --- messages ----------------------------------------------------------------------------------


def build_message(
    *, subject: str, text: str, html: str, recipients: list[str], message_id: str, mail_from: str,
    date: datetime | None = None,
) -> bytes:
    """The message on the wire: multipart/alternative (plain text first, then HTML), UTF-8 bodies
    in base64, headers with Chinese text RFC 2047 encoded: 7-bit clean for any server.

    Written out by hand rather than with ``email.message.EmailMessage``, which spends ~3 ms per
    message on header policy work: more than the SMTP round trip itself."""
    boundary = f"=_jingong_{hashlib.sha256(message_id.encode()).hexdigest()[:24]}"
    name, address = parseaddr(mail_from)
    headers = [
        f"From: {formataddr((name, address), charset='utf-8')}",
        f"To: {', '.join(recipients)}",
        f"Subject: {_encode_header(subject, 'Subject')}",
        f"Date: {format_datetime(date or clock.now())}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-generated",  # RFC 3834: no vacation replies to a robot
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    parts = []
    for subtype, body in (("plain", text), ("html", html)):
        encoded = base64.encodebytes(body.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
        parts.append(
            f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
        )
    return ("\r\n".join(headers) + "\r\n\r\n" + "".join(parts) + f"--{boundary}--\r\n").encode("ascii")


def _encode_header(value: str, name: str) -> str:
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def envelope_from(settings: Settings) -> str:
    address = parseaddr(settings.mail_from)[1]
    if "@" not in address:
        raise ConfigError(f"MAIL_FROM {settings.mail_from!r} has no address")
    return address


# --- transports --------------------------------------------------------------------------------


class SmtpTransport:
    """aiosmtplib over one connection, opened on the first send and reused until closed."""

    name = "smtp"

    def __init__(
        self, hostname: str, port: int, *, security: SmtpSecurity = SmtpSecurity.NONE,
        username: str | None = None, password: str | None = None, timeout: float = 30.0,
        validate_certs: bool = True, cert_bundle: str | None = None,
    ) -> None:
        self.hostname, self.port, self.security = hostname, port, SmtpSecurity(security)
        self.username, self.password, self.timeout = username, password, timeout
        self.validate_certs, self.cert_bundle = validate_certs, cert_bundle
        self._smtp: aiosmtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        if not settings.smtp_host:
            raise ConfigError("SMTP_HOST is not set")
        return cls(settings.smtp_host, settings.smtp_port, security=settings.smtp_security,
                   username=settings.smtp_username, password=settings.smtp_password,
                   timeout=settings.smtp_timeout)

    def describe(self) -> str:
        return f"smtp://{self.hostname}:{self.port} ({self.security.value})"

    async def connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            timeout=self.timeout,
            use_tls=self.security is SmtpSecurity.TLS,
            # True: STARTTLS or fail (never silently in clear); False: never try it.
            start_tls=self.security is SmtpSecurity.STARTTLS,
            validate_certs=self.validate_certs,
            cert_bundle=self.cert_bundle,
        )
        await smtp.connect()
        try:
            if self.username:
                await smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    async def send(self, mail: Outgoing) -> SendResult:
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            try:
                smtp = await self.connect()
            except (aiosmtplib.SMTPException, OSError) as exc:
                self._smtp = None
                return SendResult(Outcome.TEMPORARY, f"cannot connect to {self.describe()}: {_describe(exc)}",
                                  unreachable=True)
        try:
            errors, answer = await smtp.sendmail(mail.envelope_from, mail.recipients, mail.data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            permanent = all(r.code >= 500 for r in exc.recipients)
            outcome = Outcome.PERMANENT if permanent else Outcome.TEMPORARY
            return SendResult(outcome, f"all recipients refused: {detail}")
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or not smtp.is_connected:  # the server is closing the connection
                await self._drop()
            outcome = Outcome.PERMANENT if exc.code >= 500 else Outcome.TEMPORARY
            return SendResult(outcome, f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Disconnected or timed out mid-conversation: the next send reconnects.
            await self._drop()
            return SendResult(Outcome.TEMPORARY, f"connection lost: {_describe(exc)}")
        # Some recipients refused, the others accepted: aiosmtplib raises nothing, says it here.
        refused = {address: f"{response.code} {response.message}" for address, response in errors.items()}
        return SendResult(Outcome.SENT, answer, refused=refused)

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class FileTransport:
    """Writes each mail as an .eml file (the embedded default: no SMTP server). A repeat of the
    same mail overwrites its own file: one file per Message-ID."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"files in {self.directory}"

    def path_for(self, mail: Outgoing) -> Path:
        token = mail.message_id.strip("<>").split("@", 1)[0]
        return self.directory / f"{mail.mail_id:08d}-{token}.eml"

    async def send(self, mail: Outgoing) -> SendResult:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.path_for(mail)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(mail.data)
            os.replace(tmp, path)
        except OSError as exc:
            return SendResult(Outcome.TEMPORARY, f"cannot write to {self.directory}: {exc}", unreachable=True)
        return SendResult(Outcome.SENT, f"written to {path.name}")

    async def close(self) -> None:
        return None


class MemoryTransport:
    """Keeps what it is given (tests, previews)."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def describe(self) -> str:
        return "memory"

    async def send(self, mail: Outgoing) -> SendResult:
        self.sent.append(mail)
        return SendResult(Outcome.SENT, "kept in memory")

    async def close(self) -> None:
        return None


def transport_from_settings(settings: Settings | None = None) -> SmtpTransport | FileTransport:
    settings = settings or get_settings()
    if settings.smtp_host:
        return SmtpTransport.from_settings(settings)
    assert settings.mail_outbox_dir is not None
    return FileTransport(settings.mail_outbox_dir)


# --- the drain ---------------------------------------------------------------------------------


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


def _unclaim(engine: Engine, rows: list[_Claimed]) -> None:
    """Give back claimed mails that were never tried (the server went away)."""
    if not rows:
        return
    with engine.begin() as conn:
        for row in rows:
            conn.execute(
                update(_T).where(_T.c.id == row.id, _T.c.status == MailStatus.SENDING.value,
                                 _T.c.attempts == row.attempts)
                .values(status=MailStatus.QUEUED.value, attempts=row.attempts - 1, claimed_at=None)
            )


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
        # Only the claim we hold: a sender whose lease ran out must not overwrite its successor.
        conn.execute(
            update(_T).where(_T.c.id == row.id, _T.c.status == MailStatus.SENDING.value,
                             _T.c.attempts == row.attempts)
            .values(status=status.value, claimed_at=None, **values)
        )
    return status


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
        while not (should_stop and should_stop()):
            with unit_of_work(engine) as session:
                if service.outbox_held(session):
                    report.outbox_held = True
                    break
                report.released += service.release_due(session)
            rows = claim(engine, batch, settings)
            if not rows:
                break
            for index, row in enumerate(rows):
                if should_stop and should_stop():
                    _unclaim(engine, rows[index:])
                    return report
                data = build_message(
                    subject=row.subject, text=row.text, html=row.html, recipients=row.recipients,
                    message_id=row.message_id, mail_from=settings.mail_from,
                )
                result = await transport.send(Outgoing(row.id, sender, row.recipients, row.message_id, data))
                status = record_result(engine, row, result, settings)
                if status is MailStatus.SENT:
                    report.sent += 1
                else:
                    report.failed += status is MailStatus.FAILED
                    report.retried += status is MailStatus.QUEUED
                    report.errors.append(f"mail {row.id}: {result.detail}")
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


# --- the background sender ---------------------------------------------------------------------


class SenderHandle:
    """A thread that drains the outbox whenever a commit queued mail (``service.wake_senders``)
    and at least every ``interval`` seconds. ``shutdown()`` stops it between two mails."""

    def __init__(self, engine: Engine, transport_factory: Callable[[], MailTransport], interval: float) -> None:
        self.engine, self.transport_factory, self.interval = engine, transport_factory, interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.passes = 0
        self.last_report: DrainReport | None = None
        self._thread = threading.Thread(target=self._run, name="jingong-mail-sender", daemon=True)

    def start(self) -> SenderHandle:
        service.add_waker(self.wake)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def shutdown(self, timeout: float = 30.0) -> None:
        service.remove_waker(self.wake)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.last_report = drain(self.engine, self.transport_factory(), should_stop=self._stop.is_set)
            except Exception:  # keep the thread alive: the next pass may succeed
                log.exception("mail sender pass failed")
            self.passes += 1
            self._wake.wait(self.interval)


def start_sender(
    engine: Engine, *, transport_factory: Callable[[], MailTransport] | None = None,
    interval: float | None = None,
) -> SenderHandle:
    """Start the background sender (the web app's lifespan calls this and ``.shutdown()``)."""
    settings = get_settings()
    factory = transport_factory or (lambda: transport_from_settings(get_settings()))
    return SenderHandle(engine, factory, interval or settings.mail_poll_seconds).start()


# --- checking the settings ---------------------------------------------------------------------


async def _send_test(transport: MailTransport, mail: Outgoing) -> SendResult:
    try:
        return await transport.send(mail)
    finally:
        await transport.close()


def send_test(address: str, settings: Settings | None = None, transport: MailTransport | None = None) -> str:
    """Send a test mail straight to ``address`` (not through the outbox) and return the server's
    answer; raises ``JingongError`` with the reason when it is refused."""
    from config.campaign import load_campaign

    settings = settings or get_settings()
    if "@" not in address:
        raise JingongError(f"{address!r} is not a mail address")
    transport = transport or transport_from_settings(settings)
    spec = load_campaign(settings.campaign_file)
    now = clock.now()
    describe = getattr(transport, "describe", lambda: transport.name)
    context = {**service.campaign_context(spec), "at_local": service.local_text(spec, now),
               "transport": describe()}
    rendered = render(MailTemplate.TEST, context)
    message_id = f"<test-{int(now.timestamp() * 1000)}@{OutboxMail.__name__.lower()}.jingong.local>"
    data = build_message(subject=rendered.subject, text=rendered.text, html=rendered.html, recipients=[address],
                         message_id=message_id, mail_from=settings.mail_from)
    result = asyncio.run(_send_test(transport, Outgoing(0, envelope_from(settings), [address], message_id, data)))
    if result.outcome is not Outcome.SENT or result.refused:
        raise JingongError(f"test mail to {address} via {describe()} failed: "
                           f"{result.detail or result.refused}")
    return f"test mail to {address} accepted by {describe()}: {result.detail}"
