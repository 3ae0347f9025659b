"""Mail transports: how a built message leaves. ``MailTransport`` is the protocol the drain
sends through; ``SmtpTransport`` (aiosmtplib over one reused connection; STARTTLS is required
when configured, never opportunistic), ``FileTransport`` (.eml files; the embedded default
without SMTP_HOST) and ``MemoryTransport`` (tests, previews). A transport reports each send as
a ``SendResult``: sent, worth retrying, or never going to be accepted."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import aiosmtplib

from config.settings import Settings, SmtpSecurity, get_settings
from core.errors import ConfigError


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

