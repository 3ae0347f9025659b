"""``jingong mail ...``: the committee's view of the outbox and its controls."""

from __future__ import annotations

import typer
from rich.table import Table

from campaigns import service as campaigns
from cli.common import cli_actor, console, engine
from config.campaign import StageName
from config.settings import get_settings
from core.errors import ValidationFailed
from notifications import announce, drain, outbox, probe, transports
from notifications.models import MailStatus
from storage.db import unit_of_work

mail_app = typer.Typer(help="The mail outbox: list, preview, hold, release, resend, send.", no_args_is_help=True)


def _status(value: str | None) -> MailStatus | None:
    if value is None:
        return None
    try:
        return MailStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in MailStatus)
        raise ValidationFailed(f"unknown status {value!r}; known: {known}") from None


def _counts_line(counts: dict[MailStatus, int], held: bool) -> str:
    text = "  ".join(f"{s.value} {counts[s]}" for s in MailStatus)
    return text + ("   [OUTBOX HELD: nothing leaves]" if held else "")


@mail_app.command("list")
def list_cmd(
    status: str = typer.Option(None, help="only this status: " + ", ".join(s.value for s in MailStatus)),
    nomination: int = typer.Option(None, help="only mails of this nomination"),
    limit: int = typer.Option(50, help="at most this many rows (newest first)"),
) -> None:
    """Mails in the outbox, newest first, with the counts by status."""
    wanted = _status(status)
    with unit_of_work(engine(), readonly=True) as session:
        rows = outbox.list_mail(session, status=wanted, nomination_id=nomination, limit=limit)
        counts = outbox.counts_by_status(session)
        held = outbox.outbox_held(session)
    table = Table("id", "status", "template", "to", "subject", "tries", "created (UTC)", "note")
    for m in rows:
        note = m.last_error or m.hold_reason or ""
        table.add_row(str(m.id), m.status.value, m.template.value, ", ".join(m.recipients), m.subject,
                      str(m.attempts), m.created_at.strftime("%Y-%m-%d %H:%M"), note[:60])
    console.print(table)
    console.print(_counts_line(counts, held), markup=False)


@mail_app.command("counts")
def counts_cmd() -> None:
    """How many mails are in each status, and whether the outbox is held."""
    with unit_of_work(engine(), readonly=True) as session:
        counts = outbox.counts_by_status(session)
        control = outbox.get_control(session)
        due = outbox.due_count(session)
    console.print(_counts_line(counts, control.held), markup=False)
    console.print(f"due now: {due}")
    if control.held:
        console.print(f"held by {control.changed_by} at {control.changed_at}: {control.reason or ''}", markup=False)


@mail_app.command("show")
def show_cmd(mail_id: int, html: bool = typer.Option(False, "--html", help="print the HTML part too")) -> None:
    """One mail: its headers, state and plain-text part."""
    settings = get_settings()
    with unit_of_work(engine(), readonly=True) as session:
        m = outbox.get_mail(session, mail_id)
    lines = [
        f"Mail #{m.id}  [{m.status.value}]  template {m.template.value}  key {m.idempotency_key}",
        f"From: {settings.mail_from}",
        f"To: {', '.join(m.recipients)}",
        f"Subject: {m.subject}",
        f"Message-ID: {m.message_id}",
        f"Created: {m.created_at.isoformat()}  attempts: {m.attempts}"
        + (f"  sent: {m.sent_at.isoformat()}" if m.sent_at else "")
        + (f"  next try: {m.next_attempt_at.isoformat()}" if m.status == MailStatus.QUEUED and m.next_attempt_at
           else ""),
    ]
    if m.hold_reason:
        lines.append(f"Held: {m.hold_reason}" + (f" (until {m.release_after.isoformat()})" if m.release_after else ""))
    if m.last_error:
        lines.append(f"Server said: {m.last_error}")
    for address, why in m.refused.items():
        lines.append(f"Refused: {address}: {why}")
    console.print("\n".join(lines), markup=False)
    console.print("")
    console.print(m.text_body, markup=False)
    if html:
        console.print(m.html_body, markup=False)


@mail_app.command("release")
def release_cmd(
    mail_id: int = typer.Argument(None, help="the held mail to release"),
    all_: bool = typer.Option(False, "--all", help="release every held mail"),
    stage: StageName = typer.Option(None, help="announce this stage's decisions: release its held mails"),
    reason: str = typer.Option(None, help="why (recorded in the audit trail)"),
    as_: str = typer.Option(None, "--as", help="who is acting"),
) -> None:
    """Release held mails: one, all, or a stage's decisions (the announcement)."""
    chosen = sum(x is not None and x is not False for x in (mail_id, all_ or None, stage))
    if chosen != 1:
        raise ValidationFailed("give exactly one of: a mail id, --all, --stage STAGE")
    actor = cli_actor(as_)
    with unit_of_work(engine()) as session:
        if stage is not None:
            campaign = campaigns.get_campaign(session)
            count = announce.announce_stage(session, campaign.id or 0, stage, actor)
        else:
            count = outbox.release(session, actor=actor, mail_id=mail_id, all_held=all_, reason=reason)
    console.print(f"released {count} mail(s)")


@mail_app.command("resend")
def resend_cmd(
    mail_id: int, reason: str = typer.Option(None, help="why"), as_: str = typer.Option(None, "--as"),
) -> None:
    """Queue a sent or failed mail again (with a new Message-ID)."""
    with unit_of_work(engine()) as session:
        m = outbox.resend(session, mail_id, actor=cli_actor(as_), reason=reason)
        message_id = m.message_id
    console.print(f"mail {mail_id} queued again as {message_id}", markup=False)


@mail_app.command("hold")
def hold_cmd(reason: str = typer.Option(None, help="why"), as_: str = typer.Option(None, "--as")) -> None:
    """Hold the whole outbox: nothing leaves until `jingong mail unhold`."""
    with unit_of_work(engine()) as session:
        changed = outbox.set_outbox_hold(session, True, actor=cli_actor(as_), reason=reason)
    console.print("outbox held" if changed else "outbox was already held")


@mail_app.command("unhold")
def unhold_cmd(reason: str = typer.Option(None, help="why"), as_: str = typer.Option(None, "--as")) -> None:
    """Let mail leave the outbox again."""
    with unit_of_work(engine()) as session:
        changed = outbox.set_outbox_hold(session, False, actor=cli_actor(as_), reason=reason)
    console.print("outbox released" if changed else "outbox was not held")


@mail_app.command("send")
def send_cmd(batch: int = typer.Option(None, help="mails claimed per batch")) -> None:
    """Send every due mail now (one pass), through SMTP or, without SMTP_HOST, to .eml files."""
    transport = transports.transport_from_settings()
    report = drain.drain(engine(), transport, batch=batch)
    console.print(f"{transport.describe()}: {report}", markup=False)
    for line in report.errors[:20]:
        console.print(f"  {line}", markup=False)


@mail_app.command("test")
def test_cmd(address: str) -> None:
    """Send a test mail to ADDRESS with the current SMTP settings (not through the outbox)."""
    console.print(probe.send_test(address), markup=False)
