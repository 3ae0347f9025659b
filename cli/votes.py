"""`jingong votes`: the tally, its verification against the vote rows, invalidation, flags."""

from __future__ import annotations

import typer
from rich.table import Table

from campaigns import service as campaigns
from cli.common import cli_actor, console, engine, err_console
from storage.db import unit_of_work
from voting import monitor, publication, tally

CATEGORY_HELP = "public category: " + ", ".join(publication.CATEGORIES)
app = typer.Typer(help="Public voting: tally, verify, invalidate, flags.", no_args_is_help=True)


@app.command("tally")
def tally_cmd() -> None:
    """The tally per candidate (frozen after the voting close, live before)."""
    with unit_of_work(engine(), readonly=True) as session:
        standings = tally.standings(session, campaigns.get_campaign(session).id or 0)
    table = Table(title="frozen tally" if standings.frozen else "live tally")
    for column in ("rank", "nomination", "name", "votes"):
        table.add_column(column)
    for rank, r in enumerate(standings.rows, 1):
        table.add_row(str(rank), str(r.nomination_id), r.name or "", str(r.votes))
    console.print(table)


@app.command("verify")
def verify_cmd() -> None:
    """Recount every candidate from the vote rows and compare with the live counters.
    Exits 1 when any counter differs."""
    with unit_of_work(engine(), readonly=True) as session:
        campaign = campaigns.get_campaign(session)
        cid = campaign.id or 0
        truth = tally.recount(session, cid)
        mismatches = tally.compare(tally.counters(session, cid), truth)
    total = sum(truth.values())
    if not mismatches:
        console.print(f"ok: every counter matches the vote rows ({total} valid vote(s))")
        return
    for m in mismatches:
        err_console.print(f"MISMATCH nomination {m.nomination_id}: counter {m.counter}, rows {m.rows}", markup=False)
    err_console.print(f"error: {len(mismatches)} counter(s) differ from the vote rows; the rows are the truth "
                      "(investigate who changed vote_counter)", markup=False)
    raise typer.Exit(1)


@app.command("invalidate")
def invalidate_cmd(vote_id: int, reason: str = typer.Option(..., "--reason", help="why (audited)"),
                   category: str = typer.Option("other", "--category", help=CATEGORY_HELP),
                   as_: str = typer.Option(None, "--as", help="who acts (default: login name)")) -> None:
    """Invalidate one vote (the row stays, marked invalid, with the reason in the audit trail)."""
    if category not in publication.CATEGORIES:
        raise typer.BadParameter(CATEGORY_HELP, param_hint="--category")
    with unit_of_work(engine()) as session:
        vote = tally.invalidate(session, vote_id, actor=cli_actor(as_), reason=reason, category=category)
    console.print(f"vote {vote.id} invalidated: {vote.invalid_reason}")


@app.command("correct")
def correct_cmd(vote_id: int, reason: str = typer.Option(..., "--reason", help="why (audited, not published)"),
                category: str = typer.Option(..., "--category", help=CATEGORY_HELP),
                as_: str = typer.Option(None, "--as", help="who acts (default: login name)")) -> None:
    """Invalidate a vote after the vote list was published: the list stays as published and a
    correction record (receipt hash, candidate, day, category) is published beside it."""
    with unit_of_work(engine()) as session:
        fix = publication.correct(session, vote_id, actor=cli_actor(as_), category=category, reason=reason)
    console.print(f"vote {vote_id} invalidated after publication; correction {fix.id} published ({fix.category})")


@app.command("flags")
def flags_cmd() -> None:
    """Scan for suspicious patterns (bursts from one address or network, many new voters) and list them."""
    with unit_of_work(engine()) as session:
        campaign = campaigns.get_campaign(session)
        new = monitor.scan_flags(session, campaign.id or 0)
        flags = monitor.list_flags(session, campaign.id or 0)
        table = Table(title=f"{len(flags)} flag(s), {new} new")
        for column in ("minute (local)", "kind", "source (hashed)", "count", "threshold"):
            table.add_column(column)
        for f in flags:
            table.add_row(f"{monitor.minute_local(f.minute, campaign.timezone):%Y-%m-%d %H:%M}", f.kind, f.key[:12],
                          str(f.count), str(f.threshold))
    console.print(table)
