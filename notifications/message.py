"""The message on the wire: MIME bytes built from an outbox row's rendered subject and bodies,
and the envelope sender taken from the settings."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from config.settings import Settings
from core import clock
from core.errors import ConfigError


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
