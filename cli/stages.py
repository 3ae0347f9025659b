"""`jingong stages`, `jingong tick`, `jingong scheduler`, `jingong extension`."""

from __future__ import annotations

import logging
import signal
import threading

import typer
from rich.table import Table

from campaigns import service as campaigns
from cli.common import cli_actor, console, engine, err_console, service_process
from config.campaign import StageName
from config.settings import get_settings
from nominations import service as nominations
from stages import jobs
from stages import service as stages
from storage.db import unit_of_work

app = typer.Typer(help="The campaign calendar: windows, upcoming steps, opening and closing by hand.",
                  invoke_without_command=True)


@app.callback()
def show(ctx: typer.Context) -> None:
    """Stages with their windows and what the scheduler will do next (local time)."""
    if ctx.invoked_subcommand is not None:
        return
    with unit_of_work(engine(), readonly=True) as session:
        campaign = campaigns.get_campaign(session)
        spec = campaigns.spec_of(campaign)
        rows = campaigns.list_stages(session, campaign.id or 0)
        steps = stages.upcoming(session, campaign.id or 0)
    table = Table("stage", "title", "opens", "closes", "opened", "closed")
    fmt = "%Y-%m-%d %H:%M"
    for s in rows:
        table.add_row(s.name, s.title, spec.to_local(s.opens_at).strftime(fmt),
                      spec.to_local(s.closes_at).strftime(fmt),
                      spec.to_local(s.opened_at).strftime(fmt) if s.opened_at else "",
                      spec.to_local(s.closed_at).strftime(fmt) if s.closed_at else "")
    console.print(table)
    upcoming = Table("next fire time (local)", "step", "note")
    for step in steps:
        upcoming.add_row(step.due_local.strftime("%Y-%m-%d %H:%M:%S %Z"), step.key, step.last_error or "")
    console.print(upcoming)


@app.command("open")
def open_cmd(name: StageName, reason: str = typer.Option(..., help="why (audited)"),
             until: str = typer.Option(None, help="new closing instant, to reopen a closed stage"),
             as_: str = typer.Option(None, "--as")) -> None:
    """Open a stage by hand now."""
    with unit_of_work(engine()) as session:
        campaign = campaigns.get_campaign(session)
        stage = stages.open_stage(session, campaign.id or 0, name, actor=cli_actor(as_), reason=reason,
                                  until=campaigns.local_instant(until, campaign.timezone) if until else None)
        closes = campaigns.spec_of(campaign).to_local(stage.closes_at)
    console.print(f"{name.value} open until {closes:%Y-%m-%d %H:%M %Z}; the scheduler applies it at its next tick")


@app.command("close")
def close_cmd(name: StageName, reason: str = typer.Option(..., help="why (audited)"),
              as_: str = typer.Option(None, "--as")) -> None:
    """Close a stage by hand now."""
    with unit_of_work(engine()) as session:
        campaign = campaigns.get_campaign(session)
        results = jobs.close_now(session, campaign.id or 0, name, actor=cli_actor(as_), reason=reason)
    for r in results:
        console.print(f"{r.campaign} {r.key}: {r.summary}", markup=False)
    console.print(f"{name.value} closed", markup=False)


@app.command("move")
def move_cmd(name: StageName, reason: str = typer.Option(..., help="why (audited)"),
             opens: str = typer.Option(None, help="new opening, e.g. 2021-04-01T00:00 (campaign time)"),
             closes: str = typer.Option(None, help="new closing, e.g. 2021-06-02T18:00 (campaign time)"),
             as_: str = typer.Option(None, "--as")) -> None:
    """Move a stage's window."""
    with unit_of_work(engine()) as session:
        campaign = campaigns.get_campaign(session)
        stage = stages.move_window(
            session, campaign.id or 0, name, actor=cli_actor(as_), reason=reason,
            opens_at=campaigns.local_instant(opens, campaign.timezone) if opens else None,
            closes_at=campaigns.local_instant(closes, campaign.timezone) if closes else None,
        )
        spec = campaigns.spec_of(campaign)
    console.print(f"{name.value}: {spec.to_local(stage.opens_at):%Y-%m-%d %H:%M} – "
                  f"{spec.to_local(stage.closes_at):%Y-%m-%d %H:%M %Z}")


def tick_cmd() -> None:
    """Apply every due step now (what the scheduler does at each instant); a step a rule refused
    earlier is tried again at once. Exits 1 when a step is still blocked."""
    results = jobs.tick(engine(), retry_blocked=True)
    for r in results:
        late = f" (late by {r.late_seconds:.0f}s)" if r.late_seconds >= 60 else ""
        console.print(f"{r.campaign} {r.key}: {r.summary}{late}", markup=False)
    blocked = [r for r in results if not r.done]
    if blocked:
        err_console.print(f"error: {blocked[-1].key} is blocked: {blocked[-1].summary.removeprefix('blocked: ')}",
                          markup=False)
        raise typer.Exit(1)
    if not results:
        console.print("nothing due")


def scheduler_cmd(interval: float = typer.Option(None, help="safety-net interval in seconds")) -> None:
    """Run the scheduler in the foreground (for a worker process); Ctrl-C or SIGTERM stops it."""
    from stages.scheduler import start_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with service_process(get_settings()):
        handle = start_scheduler(engine(), safety_interval=interval)
        console.print("scheduler running", markup=False)
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            handle.shutdown()


def extension_cmd(nomination_id: int, until: str = typer.Option(..., help="e.g. 2021-06-02T18:00 (campaign time)"),
                  reason: str = typer.Option(..., help="why (audited, shown to the applicant)"),
                  as_: str = typer.Option(None, "--as")) -> None:
    """Grant one draft a personal extension of the nomination deadline."""
    with unit_of_work(engine()) as session:
        campaign = campaigns.get_campaign(session)
        n = nominations.grant_extension(session, nomination_id, until=campaigns.local_instant(until, campaign.timezone),
                                   reason=reason, actor=cli_actor(as_))
        local = campaigns.spec_of(campaign).to_local(n.extension_until) if n.extension_until else None
    console.print(f"nomination {nomination_id} may be submitted until {local:%Y-%m-%d %H:%M:%S %Z}")
