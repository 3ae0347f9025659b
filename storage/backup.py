"""Backups of the embedded SQLite database, taken while the service runs, and restores that lose
nothing.

``backup`` copies with SQLite's online backup API in one step: the copy is the database as of
one instant (a WAL read snapshot), and writers carry on meanwhile. The copy is written to a
temporary file, checked with ``PRAGMA integrity_check`` and renamed into place, and the instant is
recorded in ``data_dir/last_backup.json`` for ``jingong doctor``.

``restore`` refuses while a service holds the database (see ``holding_database``), then copies the
backup next to the database, checks it, keeps the current file as ``<database>.before-restore``
and renames the copy into place, so at every moment the database path names a whole database.

Who holds the database: ``jingong serve`` and ``jingong scheduler`` take a shared ``flock`` on
``<database>.lock`` for their whole life; a restore needs it exclusively. The kernel drops the
lock when a process ends however it ends, so no stale pid file can block a restore, and no
running service can be missed (a ``BEGIN EXCLUSIVE`` probe would succeed against an idle one).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy.engine import URL, make_url

from core.errors import Conflict, JingongError

LAST_BACKUP_FILE = "last_backup.json"


class BackupFailed(JingongError):
    """A backup or restore that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    at: datetime
    row_counts: dict[str, int] = field(default_factory=dict)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def holding_database(database: Path) -> Iterator[None]:
    """Held for the life of a service process: a shared lock that makes ``restore`` refuse."""
    handle = _open_lock(database)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"a restore of {database} is in progress; start the service when it has finished") from None
        yield
    finally:
        handle.close()  # closing drops the lock


def _open_lock(database: Path) -> IO[bytes]:
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}


def _check(path: Path) -> dict[str, int]:
    """Open a database file, refuse it unless ``integrity_check`` passes; its tables' row counts."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupFailed(f"{path} cannot be opened as a SQLite database: {exc}") from None
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise BackupFailed(f"{path} fails the integrity check: {result[0]}")
        return table_counts(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupFailed(f"{path} is not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


def _copy(source: Path, target: Path) -> None:
    """An online, consistent copy of ``source`` into a new file ``target``, fsynced."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            # one step (pages=-1): the whole copy reads one snapshot; writers are not blocked (WAL)
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path, purpose: str) -> Path:
    return path.with_name(f".{path.name}.{purpose}-{os.getpid()}")


def _discard(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def backup(database: Path, target: Path, *, at: datetime, data_dir: Path) -> BackupReport:
    """Copy the live database to ``target`` (replacing it) and record the instant."""
    if not database.exists():
        raise BackupFailed(f"no database at {database}; run `jingong init` first")
    target = target.resolve()
    if target == database.resolve():
        raise BackupFailed("the backup file must not be the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_beside(target, "backup")
    _discard(temp)
    try:
        _copy(database, temp)
        counts = _check(temp)
        os.replace(temp, target)
    except (OSError, sqlite3.OperationalError) as exc:
        _discard(temp)
        raise BackupFailed(f"cannot write the backup to {target}: {exc} (is there room? is it writable?)") from None
    except BaseException:
        _discard(temp)
        raise
    _fsync_dir(target.parent)
    report = BackupReport(path=target, size=target.stat().st_size, at=at, row_counts=counts)
    record_backup(data_dir, report)
    return report


def record_backup(data_dir: Path, report: BackupReport) -> None:
    """Remember the last backup (written whole, then renamed) for ``jingong doctor``."""
    path = data_dir / LAST_BACKUP_FILE
    temp = _temp_beside(path, "new")
    temp.write_text(json.dumps({"at": report.at.isoformat(), "file": str(report.path), "size": report.size}),
                    encoding="utf-8")
    os.replace(temp, path)


def last_backup(data_dir: Path) -> datetime | None:
    """The instant of the last backup recorded under ``data_dir``, if any."""
    try:
        return datetime.fromisoformat(json.loads((data_dir / LAST_BACKUP_FILE).read_text(encoding="utf-8"))["at"])
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class RestoreReport:
    database: Path
    previous: Path | None
    row_counts: dict[str, int]


def restore(source: Path, database: Path) -> RestoreReport:
    """Replace ``database`` with the backup ``source``, refusing while a service holds it."""
    if not source.is_file():
        raise BackupFailed(f"no backup file at {source}")
    database.parent.mkdir(parents=True, exist_ok=True)
    handle = _open_lock(database)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"{database} is in use by a running `jingong serve` or `jingong scheduler`; "
                           "stop it, then restore") from None
        return _replace(source, database)
    finally:
        handle.close()


def _replace(source: Path, database: Path) -> RestoreReport:
    temp = _temp_beside(database, "restore")
    _discard(temp)
    try:
        _copy(source, temp)
        counts = _check(temp)
    except sqlite3.DatabaseError as exc:
        _discard(temp)
        raise BackupFailed(f"{source} is not a usable SQLite database: {exc}") from None
    except BaseException:
        _discard(temp)
        raise
    previous = None
    if database.exists():
        _checkpoint(database)  # whatever sits in its WAL belongs to the file kept aside
        previous = database.with_name(database.name + ".before-restore")
        _discard(previous)
        try:
            os.link(database, previous)
        except OSError:  # a file system without hard links
            _copy(database, previous)
    os.replace(temp, database)
    _discard(Path(f"{database}-wal"), Path(f"{database}-shm"))
    _fsync_dir(database.parent)
    return RestoreReport(database=database, previous=previous, row_counts=counts)


def _checkpoint(database: Path) -> None:
    conn = sqlite3.connect(database, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def pg_dump_command(url: str, target: Path) -> str:
    """The ``pg_dump`` line for a PostgreSQL URL, the password left out (libpq takes it from
    ``PGPASSWORD`` or ``~/.pgpass``)."""
    given = make_url(url)
    libpq = URL.create("postgresql", username=given.username, host=given.host, port=given.port,
                       database=given.database, query=given.query)
    return f"pg_dump --format=custom --file={target} '{libpq.render_as_string(hide_password=False)}'"
