"""`jingong audit`: the trail's hash chain: verify it, show its heads."""

from __future__ import annotations

import typer

from audit import chain
from cli.common import console, engine, err_console
from storage.db import unit_of_work
from wiring import ledger

app = typer.Typer(help="The audit trail's hash chain.", no_args_is_help=True)


@app.command("verify")
def verify_cmd(campaign: int = typer.Option(None, "--campaign", help="only this campaign id")) -> None:
    """Recompute the hash chain of the transition records and audit events from the rows.
    Exits 1 naming the first row that does not match (per campaign)."""
    with unit_of_work(engine(), readonly=True) as session:
        checked = ledger.verify_trail(session, campaign_id=campaign)
    if checked.breaks:
        for problem in checked.breaks:
            err_console.print(f"CHAIN BROKEN at {problem}", markup=False)
        raise typer.Exit(1)
    heads = "; ".join(f"campaign {h.campaign_key}: chain_seq {h.seq} head {h.hash}" for h in checked.heads)
    console.print(f"ok: {checked.rows} row(s) on the chain, every hash matches ({heads or 'empty'})", markup=False)


@app.command("head")
def head_cmd(campaign: int = typer.Option(..., "--campaign", help="campaign id")) -> None:
    """The chain's head now (compare it with a published one)."""
    with unit_of_work(engine(), readonly=True) as session:
        head = chain.head(session, campaign)
    console.print(f"campaign {head.campaign_key}: chain_seq {head.seq} head {head.hash}", markup=False)
