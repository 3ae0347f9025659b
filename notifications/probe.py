"""Checking the mail settings: a test mail sent straight through the configured transport (not
through the outbox), with the server's answer or the reason it was refused."""

from __future__ import annotations

import asyncio

from config.campaign import load_campaign
from config.settings import Settings, get_settings
from core import clock
from core.errors import JingongError
from notifications.context import campaign_context, local_text
from notifications.message import build_message, envelope_from
from notifications.models import MailTemplate, OutboxMail
from notifications.render import render
from notifications.transports import MailTransport, Outcome, Outgoing, SendResult, transport_from_settings


async def _send_and_close(transport: MailTransport, mail: Outgoing) -> SendResult:
    try:
        return await transport.send(mail)
    finally:
        await transport.close()


def send_test(address: str, settings: Settings | None = None, transport: MailTransport | None = None) -> str:
    """Send a test mail straight to ``address`` (not through the outbox) and return the server's
    answer; raises ``JingongError`` with the reason when it is refused."""
    settings = settings or get_settings()
    if "@" not in address:
        raise JingongError(f"{address!r} is not a mail address")
    transport = transport or transport_from_settings(settings)
    spec = load_campaign(settings.campaign_file)
    now = clock.now()
    describe = getattr(transport, "describe", lambda: transport.name)
    context = {**campaign_context(spec), "at_local": local_text(spec, now), "transport": describe()}
    rendered = render(MailTemplate.TEST, context)
    message_id = f"<test-{int(now.timestamp() * 1000)}@{OutboxMail.__name__.lower()}.jingong.local>"
    data = build_message(subject=rendered.subject, text=rendered.text, html=rendered.html, recipients=[address],
                         message_id=message_id, mail_from=settings.mail_from)
    result = asyncio.run(_send_and_close(transport, Outgoing(0, envelope_from(settings), [address], message_id, data)))
    if result.outcome is not Outcome.SENT or result.refused:
        raise JingongError(f"test mail to {address} via {describe()} failed: "
                           f"{result.detail or result.refused}")
    return f"test mail to {address} accepted by {describe()}: {result.detail}"

