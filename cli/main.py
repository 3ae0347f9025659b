"""The ``jingong`` command line. Errors exit non-zero with one clear line, never a traceback."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError

from campaigns import service as campaigns
from cli.audit import app as audit_app
from cli.common import cli_actor, console, engine, err_console
from cli.mail import mail_app
from cli.ops import backup_cmd, doctor_cmd, restore_cmd
from cli.serve import serve
from cli.simulate import simulate_cmd
from cli.stages import app as stages_app
from cli.stages import extension_cmd, scheduler_cmd, tick_cmd
from cli.users import users_app
from cli.votes import app as votes_app
from config.campaign import StageName, Track, load_campaign
from config.next_edition import next_edition
from config.settings import get_settings
from core.errors import JingongError
from nominations import service as nominations
from nominations.states import STATE_LABELS_ZH, State
from stages import service as stages
from storage import faults
from storage.db import unit_of_work
from storage.migrate import upgrade
from wiring.bootstrap import bootstrap
from wiring.tables import metadata
from workflow import queries
from workflow import service as workflow
from workflow.machine import EVENT_LABELS_ZH, Event, edges, to_mermaid

app = typer.Typer(
    help="jingong: runs a craftsman-award campaign (津工精匠) from nomination to commendation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
campaign_app = typer.Typer(help="The campaign and its calendar.", no_args_is_help=True)
nominations_app = typer.Typer(help="Nominations (read-only views).", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(nominations_app, name="nominations")
app.add_typer(mail_app, name="mail")
app.add_typer(users_app, name="users")
app.command("serve")(serve)
app.add_typer(stages_app, name="stages")
app.add_typer(votes_app, name="votes")
app.add_typer(audit_app, name="audit")
app.command("tick")(tick_cmd)
app.command("scheduler")(scheduler_cmd)
app.command("extension")(extension_cmd)
app.command("simulate")(simulate_cmd)
app.command("backup")(backup_cmd)
app.command("restore")(restore_cmd)
app.command("doctor")(doctor_cmd)


@app.command()
def init(
    campaign_file: Path = typer.Option(None, "--campaign", help="campaign file (TOML)"),
    replace_windows: bool = typer.Option(
        False, help="overwrite stage windows already stored with the file's (normally kept)"
    ),
) -> None:
    """Create or migrate the database and load the campaign file."""
    settings = get_settings()
    spec = load_campaign(campaign_file or settings.campaign_file)
    faults.preflight(settings)
    eng = engine()
    upgrade(eng, metadata)
    with unit_of_work(eng) as session:
        campaign = stages.load_campaign(session, spec, replace_windows=replace_windows)
        slug = campaign.slug
    console.print(f"database ready: {eng.url.render_as_string(hide_password=True)}")
    console.print(f"campaign loaded: {slug} ({spec.name})")


@campaign_app.command("show")
def campaign_show(slug: str = typer.Option(None, help="campaign slug (default: the newest)")) -> None:
    """Stages with their windows in the campaign's local time, counts and quotas."""
    with unit_of_work(engine(), readonly=True) as session:
        campaign = campaigns.get_campaign(session, slug)
        spec = campaigns.spec_of(campaign)
        windows = campaigns.calendar(session, campaign)
        units = campaigns.list_units(session, campaign.id or 0)
        counts = nominations.count_by_state(session, campaign.id or 0)
    console.print(f"[bold]{campaign.name}[/bold]  ({campaign.slug}, edition {campaign.edition})")
    console.print(f"time zone: {spec.timezone} (all times below are local)")
    table = Table("stage", "title", "opens", "closes", "now")
    for w in windows:
        table.add_row(
            w.name, w.title, w.opens.strftime("%Y-%m-%d %H:%M %Z"), w.closes.strftime("%Y-%m-%d %H:%M %Z"),
            "OPEN" if w.open_now else "",
        )
    console.print(table)
    console.print(
        f"awards: {spec.awards.main} main (津工精匠) + {spec.awards.finalist} finalist (入围奖); "
        f"shortlist {spec.shortlist.min}–{spec.shortlist.max}"
    )
    console.print(f"nominating units: {len(units)} (quota total {sum(u.quota for u in units)}, over-quota allowed)")
    console.print(
        f"priority conditions: {len(spec.priority_conditions)}; technical grades: {len(spec.technical_grades)}"
    )
    if counts:
        console.print("nominations: " + ", ".join(f"{s.value} {n}" for s, n in sorted(counts.items())))


@campaign_app.command("check")
def campaign_check(path: Path) -> None:
    """Validate a campaign file without loading it."""
    spec = load_campaign(path)
    console.print(f"ok: {spec.slug}, {len(spec.stages)} stages, {len(spec.units)} units")


@campaign_app.command("new")
def campaign_new(
    source: Path = typer.Argument(None, help="this year's campaign file (default: JINGONG_CAMPAIGN)"),
    out: Path = typer.Option(None, "--out", help="where to write (default: beside the source, named by the new slug)"),
    force: bool = typer.Option(False, help="overwrite an existing file"),
) -> None:
    """Next year's campaign file from this one: edition and title advanced, every instant a year on."""
    source = source or get_settings().campaign_file
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise JingongError(f"{source}: cannot read ({exc.strerror or exc})") from None
    new_text, spec = next_edition(text, source.name)
    target = out or source.with_name(f"{spec.slug}.toml")
    if target.exists() and not force:
        raise JingongError(f"{target} exists; choose another --out or add --force")
    target.write_text(new_text, encoding="utf-8")
    nomination = spec.stage(StageName.NOMINATION)
    console.print(f"written: {target} ({spec.slug}, edition {spec.edition}, {spec.name})")
    console.print(f"nomination deadline: {spec.to_local(nomination.closes):%Y-%m-%d %H:%M} {spec.timezone}; "
                  "fill in notice_ref once the notice is issued, then: jingong init --campaign " + str(target))


@app.command()
def machine(fmt: str = typer.Option("mermaid", "--format", help="mermaid or text")) -> None:
    """The candidate state diagram, generated from the state machine itself."""
    if fmt == "mermaid":
        console.print(to_mermaid(), markup=False)
    elif fmt == "text":
        for source, event, dest in edges():
            console.print(f"{source.value:16} --{event.value}--> {dest.value}", markup=False)
    else:
        raise typer.BadParameter("--format must be mermaid or text")


@nominations_app.command("list")
def nominations_list(
    state: str = typer.Option(None, help="only this state"),
    limit: int = typer.Option(200, help="at most this many rows"),
) -> None:
    """Nominations of the current campaign."""
    states = None
    if state:
        try:
            states = [State(state)]
        except ValueError:
            raise JingongError(f"unknown state {state!r}; known: {', '.join(s.value for s in State)}") from None
    with unit_of_work(engine(), readonly=True) as session:
        campaign = campaigns.get_campaign(session)
        rows = nominations.list_nominations(session, campaign.id or 0, states=states, limit=limit)
    table = Table("id", "kind", "name", "employer", "state", "track", "version")
    for n in rows:
        table.add_row(str(n.id), n.kind, n.name or "", n.employer or "", n.state, n.track or "", str(n.version))
    console.print(table)
    console.print(f"{len(rows)} nomination(s)")


@nominations_app.command("show")
def nominations_show(nomination_id: int) -> None:
    """One nomination with its form and state history."""
    with unit_of_work(engine(), readonly=True) as session:
        n = nominations.get(session, nomination_id)
        campaign = campaigns.get_campaign_by_id(session, n.campaign_id)
        spec = campaigns.spec_of(campaign)
        records = queries.history(session, nomination_id)
        problems = nominations.form_problems(n, spec) if n.state == State.DRAFT else []
    console.print(f"[bold]#{n.id} {n.name or '(no name)'}[/bold]  {n.state} ({STATE_LABELS_ZH[State(n.state)]})"
                  f"  version {n.version}")
    for field in ("kind", "unit_id", "sex", "ethnicity", "birth_date", "education", "political_status",
                  "employer", "position", "technical_grade", "years_of_service", "phone", "applicant_email",
                  "priority_conditions", "track", "honours", "achievements", "deeds"):
        value = getattr(n, field)
        if value not in (None, "", []):
            console.print(f"  {field}: {value}", markup=False)
    for p in problems:
        console.print(f"  missing/invalid: {p.field}: {p.message}", markup=False)
    table = Table("received (local)", "event", "from", "to", "who", "reason")
    for r in records:
        table.add_row(spec.to_local(r.received_at or r.at).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], r.event,
                      r.from_state, r.to_state, r.actor, r.reason or "")
    console.print(table)


@app.command("transition")
def transition_cmd(
    nomination_id: int,
    event: str = typer.Argument(..., help="one of: " + ", ".join(e.value for e in Event)),
    reason: str = typer.Option(None, help="why (required for reject, fail_vetting, objections)"),
    track: Track = typer.Option(None, help="for vet: main or finalist"),
    expected_version: int = typer.Option(None, help="refuse if the nomination changed since"),
    as_: str = typer.Option(None, "--as", help="who is acting (recorded in the audit trail)"),
) -> None:
    """Fire EVENT on a nomination through the transition service."""
    data = {"track": track.value} if track else {}
    with unit_of_work(engine()) as session:
        record = workflow.transition(session, nomination_id, event, actor=cli_actor(as_), reason=reason,
                                     data=data, expected_version=expected_version)
    if record is None:
        console.print(f"nomination {nomination_id}: nothing to do (already there)")
    else:
        console.print(f"nomination {nomination_id}: {record.from_state} -> {record.to_state} "
                      f"({EVENT_LABELS_ZH[Event(record.event)]}), version {record.version}")


@app.command("import-prior")
def import_prior(path: Path) -> None:
    """Load the registry of earlier editions' winners and finalists from a CSV file
    (columns: edition,award,name,birth_date,employer; award = winner or finalist)."""
    with unit_of_work(engine()) as session:
        added = nominations.import_prior(session, path)
    console.print(f"imported {added} new row(s) from {path}")


def main() -> None:
    bootstrap()
    try:
        app(prog_name="jingong")
    except JingongError as exc:
        err_console.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except (OperationalError, ProgrammingError, OSError) as exc:
        line = _fault_line(exc)
        if line is None:
            _unexpected(exc)
        err_console.print(f"error: {line}", markup=False)
        sys.exit(1)
    except ValueError as exc:  # settings from the environment
        err_console.print(f"error: {str(exc).splitlines()[0]}", markup=False)
        sys.exit(1)
    except Exception as exc:
        _unexpected(exc)


def _fault_line(exc: Exception) -> str | None:
    """A read-only or full data folder, or a database that does not answer, in one line."""
    fault = faults.storage_fault(exc, get_settings().data_dir)
    if fault is not None or isinstance(exc, OSError):
        return fault
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"database: {first} (is DATABASE_URL right? did you run `jingong init`?)"


def _unexpected(exc: Exception) -> None:
    if os.environ.get("JINGONG_DEBUG"):
        raise exc
    err_console.print(
        f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
        "(set JINGONG_DEBUG=1 for the traceback)",
        markup=False,
    )
    sys.exit(2)


if __name__ == "__main__":
    main()
