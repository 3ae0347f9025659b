"""`jingong backup`, `jingong restore`, `jingong doctor`: running the service in public."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import console, engine
from config.settings import get_settings
from core import clock
from core.errors import JingongError
from storage import backup
from storage.db import dispose_engines, ping
from wiring import doctor


def say(line: str) -> None:
    """One finding or fact per line, never wrapped (logs and grep read them whole)."""
    console.print(line, markup=False, soft_wrap=True)


def _sqlite_or_none() -> Path | None:
    return backup.sqlite_path(get_settings().effective_database_url)


def backup_cmd(file: Path = typer.Argument(..., help="where to write the copy (replaced if it exists)")) -> None:
    """A consistent copy of the database while the service runs (SQLite); on PostgreSQL, the
    pg_dump command to use and whether the server answers."""
    settings = get_settings()
    database = _sqlite_or_none()
    if database is None:
        url = settings.effective_database_url
        try:
            ping(engine())
        except Exception as exc:  # noqa: BLE001 - any failure is "unreachable", said in one line
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise JingongError(f"PostgreSQL does not answer ({first}); back it up with pg_dump once it does") from None
        say("PostgreSQL: back it up with pg_dump (the server answers):")
        say(f"  {backup.pg_dump_command(url, file)}")
        say("  (the password is not shown: pg_dump reads it from PGPASSWORD or ~/.pgpass)")
        return
    report = backup.backup(database, file, at=clock.wall_now(), data_dir=settings.data_dir)
    rows = sum(report.row_counts.values())
    say(f"backup written: {report.path} ({report.size:,} bytes) as of "
                  f"{report.at.isoformat(timespec='seconds')}")
    say(f"  integrity check ok; {len(report.row_counts)} tables, {rows:,} rows")
    for name, count in report.row_counts.items():
        if count:
            say(f"  {name}: {count:,}")


def restore_cmd(file: Path = typer.Argument(..., help="a file written by `jingong backup`")) -> None:
    """Replace the database with a backup: refused while `jingong serve` or `jingong scheduler`
    runs; the current database is kept as <database>.before-restore."""
    database = _sqlite_or_none()
    if database is None:
        raise JingongError("DATABASE_URL is PostgreSQL: restore a pg_dump file with "
                           f"`pg_restore --clean --if-exists --dbname=<database URL> {file}`")
    dispose_engines()  # this process's own connections must not outlive the old file
    report = backup.restore(file, database)
    rows = sum(report.row_counts.values())
    say(f"restored {database} from {file} (integrity check ok; {len(report.row_counts)} tables, "
                  f"{rows:,} rows)")
    if report.previous is not None:
        say(f"  the previous database is kept as {report.previous}")
    say("  run `jingong init` if the backup comes from an older version")


def doctor_cmd() -> None:
    """What is not ready for a public deployment, one line each; exits 1 if anything is not."""
    findings = doctor.examine(get_settings(), engine(), clock.wall_now())
    for f in findings:
        mark = "note" if f.note else ("ok" if f.ready else "NOT READY")
        say(f"{mark:9}  {f.check}: {f.message}")
    missing = [f for f in findings if not f.ready]
    if missing:
        say(f"{len(missing)} thing(s) not ready for a public deployment")
        raise typer.Exit(1)
    say("ready for a public deployment")
