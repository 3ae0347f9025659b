"""Faults at the edges: a data folder that is read-only or full.

``preflight`` is asked before a process starts writing (``jingong init``, ``jingong serve``): it
writes, syncs and removes a small probe file in every folder the service writes to and answers
with one line naming the folder and what to do. ``disk_full`` and ``storage_fault`` recognise the
same faults when they surface later as an ``OSError`` or a SQLite error, so a running service can
answer 503 and the command line one line instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from config.settings import Settings
from core.errors import JingongError
from storage.backup import sqlite_path

#: below this much free space a folder counts as full (SQLite needs room for its WAL and journal)
MIN_FREE_BYTES = 1024 * 1024
PROBE_BYTES = 4096

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
READONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
SQLITE_FULL = ("database or disk is full",)
SQLITE_READONLY = ("readonly database", "disk i/o error", "unable to open database file")


class StorageUnavailable(JingongError):
    """A folder the service writes to is read-only or full."""


def _what_to_do(folder: Path, kind: str) -> str:
    if kind == "full":
        return f"{folder} is full: free some space there (or point JINGONG_DATA_DIR elsewhere), then start again"
    return (f"{folder} is not writable ({kind}): make it writable for this user "
            "(or point JINGONG_DATA_DIR elsewhere), then start again")


def _kind_of(exc: OSError) -> str:
    if exc.errno in FULL_ERRNOS:
        return "full"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def check_folder(folder: Path) -> None:
    """Create ``folder`` if needed and prove it takes a write; else one line saying what to do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".jingong-probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"\0" * PROBE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            if probe.exists():
                probe.unlink()
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise StorageUnavailable(_what_to_do(folder, _kind_of(exc))) from None
    if free < MIN_FREE_BYTES:
        raise StorageUnavailable(_what_to_do(folder, "full"))


def check_file(path: Path) -> None:
    """An existing file the service will write (the SQLite database) must open for writing."""
    if not path.exists():
        return
    try:
        with path.open("r+b"):
            pass
    except OSError as exc:
        kind = _kind_of(exc)
        raise StorageUnavailable(f"{path} is not writable ({kind}): make it writable for this user, "
                                 "then start again") from None


def folders(settings: Settings) -> list[Path]:
    """Every folder the embedded default writes to, each once."""
    found = [Path(settings.data_dir)]
    database = sqlite_path(settings.effective_database_url)
    if database is not None:
        found.append(database.parent)
    if not settings.smtp_host and settings.mail_outbox_dir is not None:
        found.append(Path(settings.mail_outbox_dir))
    found.append(Path(settings.uploads_dir))
    unique: list[Path] = []
    for folder in found:
        if folder.resolve() not in {u.resolve() for u in unique}:
            unique.append(folder)
    return unique


def preflight(settings: Settings) -> None:
    """Refuse to start, with one line, when a folder the service writes to is read-only or full."""
    for folder in folders(settings):
        check_folder(folder)
    database = sqlite_path(settings.effective_database_url)
    if database is not None:
        check_file(database)


def _sqlite_message(exc: BaseException) -> str | None:
    if isinstance(exc, DBAPIError):
        exc = exc.orig or exc
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return str(exc).lower()
    return None


def disk_full(exc: BaseException) -> bool:
    """No space left: an ``OSError`` ENOSPC/EDQUOT or SQLite's "database or disk is full"."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    message = _sqlite_message(exc)
    return message is not None and any(text in message for text in SQLITE_FULL)


def storage_fault(exc: BaseException, data_dir: Path) -> str | None:
    """One line for a read-only or full data folder surfacing as ``exc``; None for anything else."""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS | READONLY_ERRNOS:
        where = Path(exc.filename) if exc.filename else data_dir
        return _what_to_do(where, _kind_of(exc))
    message = _sqlite_message(exc)
    if message is None:
        return None
    if any(text in message for text in SQLITE_FULL):
        return _what_to_do(data_dir, "full")
    if any(text in message for text in SQLITE_READONLY):
        return _what_to_do(data_dir, f"the database says: {message}")
    return None
