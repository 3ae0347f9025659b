"""`jingong simulate`: a whole campaign on a virtual clock."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from cli.common import console, err_console


def simulate_cmd(
    nominations: int = typer.Option(200, "--nominations", min=1, help="how many nominations to generate"),
    seed: int = typer.Option(2021, help="same seed, same result"),
    database: Path = typer.Option(None, help="keep the simulated database in this SQLite file"),
    campaign: Path = typer.Option(None, help="campaign file (default: the 2021 campaign)"),
    quiet: bool = typer.Option(False, help="only the final table"),
) -> None:
    """Run a whole campaign on a virtual clock with the embedded default and print what happened."""
    from simulate.service import simulate

    def say(line: str) -> None:
        if not quiet:
            console.print(line, markup=False)

    if database is not None and database.exists():
        database.unlink()
    if console.is_terminal and not quiet:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("nominations", total=nominations)
            report = simulate(nominations, seed, say=say, progress=lambda k: bar.advance(task, k),
                              database=database, campaign_file=campaign)
    else:
        done = [0]

        def plain(k: int) -> None:
            step = max(1, nominations // 10)
            before, done[0] = done[0], done[0] + k
            if not quiet and before // step != done[0] // step:
                console.print(f"nominations: {done[0]}/{nominations}", markup=False)

        report = simulate(nominations, seed, say=say, progress=plain, database=database, campaign_file=campaign)
    table = Table("state", "nominations", title=f"simulated campaign: {nominations} nominations, seed {seed}")
    for state, n in report.counts.items():
        table.add_row(state, str(n))
    console.print(table)
    console.print(f"mails queued: {report.mails}", markup=False)
    console.print(f"submissions refused: {report.late_refused} late, {report.prior_refused} prior winners, "
                  f"{report.incomplete_refused} incomplete", markup=False)
    console.print(f"votes counted: {report.votes} ({report.second_votes_refused} second votes the same day refused)",
                  markup=False)
    console.print(f"wall time: {report.seconds:.1f} s", markup=False)
    if not report.reached_commendation:
        why = report.blocked[0] if report.blocked else "nobody was commended"
        err_console.print(f"error: the campaign did not reach commendation: {why}", markup=False)
        raise typer.Exit(1)
