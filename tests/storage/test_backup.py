"""Backups taken while writers keep writing, restores refused while a service holds the database,
and the round trip."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import Conflict
from storage import backup
from storage.db import make_engine

AT = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def _live_database(path: Path) -> None:
    """A database as the service opens it (WAL) with one table to write into."""
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE vote (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    engine.dispose()


def _ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM vote")}
    finally:
        conn.close()


def test_backup_while_another_thread_writes_holds_every_committed_row(tmp_path: Path) -> None:
    database = tmp_path / "data" / "jingong.db"
    _live_database(database)
    engine = make_engine(f"sqlite:///{database}")
    committed: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with engine.begin() as conn:  # one committed row per transaction, as the service writes
                conn.exec_driver_sql("INSERT INTO vote (id, payload) VALUES (?, ?)", (n, "x" * 200))
            committed.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 300:
            time.sleep(0.01)
        before = set(committed)  # every row whose commit returned before the backup began
        report = backup.backup(database, tmp_path / "copies" / "b.db", at=AT, data_dir=database.parent)
        while len(committed) < len(before) + 100:  # the writer was never blocked
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
        engine.dispose()
    copy = _ids(report.path)
    assert before <= copy
    assert copy == set(range(1, max(copy) + 1))  # one snapshot: no gaps
    assert report.row_counts["vote"] == len(copy) and report.size == report.path.stat().st_size
    conn = sqlite3.connect(report.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert backup.last_backup(database.parent) == AT


def test_restore_round_trip_keeps_the_previous_file(tmp_path: Path) -> None:
    database = tmp_path / "jingong.db"
    _live_database(database)
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO vote (id, payload) VALUES (1, 'before the backup')")
    backup.backup(database, tmp_path / "b.db", at=AT, data_dir=tmp_path)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO vote (id, payload) VALUES (2, 'after the backup')")
    engine.dispose()

    report = backup.restore(tmp_path / "b.db", database)

    assert _ids(database) == {1}
    assert report.previous == tmp_path / "jingong.db.before-restore" and _ids(report.previous) == {1, 2}
    assert not Path(f"{database}-wal").exists()
    reopened = make_engine(f"sqlite:///{database}")  # the service opens it again (WAL) and writes
    with reopened.begin() as conn:
        conn.exec_driver_sql("INSERT INTO vote (id, payload) VALUES (3, 'after the restore')")
    reopened.dispose()
    assert _ids(database) == {1, 3}


def test_restore_refuses_a_damaged_file_and_leaves_the_database(tmp_path: Path) -> None:
    database = tmp_path / "jingong.db"
    _live_database(database)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    with pytest.raises(backup.BackupFailed, match="damaged.db"):
        backup.restore(damaged, database)
    assert _ids(database) == set()
    assert not (tmp_path / "jingong.db.before-restore").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from storage.backup import holding_database
    with holding_database(Path(sys.argv[1])):
        print("holding", flush=True)
        time.sleep(60)
""")


def test_restore_refused_while_another_process_holds_the_database(tmp_path: Path) -> None:
    database = tmp_path / "jingong.db"
    _live_database(database)
    backup.backup(database, tmp_path / "b.db", at=AT, data_dir=tmp_path)
    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(database)], cwd=root, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(Conflict, match="in use by a running"):
            backup.restore(tmp_path / "b.db", database)
        assert not (tmp_path / "jingong.db.before-restore").exists()
    finally:
        holder.kill()
        holder.wait()
    backup.restore(tmp_path / "b.db", database)  # the kernel dropped the lock with the process
    assert (tmp_path / "jingong.db.before-restore").exists()


def test_a_service_does_not_start_during_a_restore(tmp_path: Path) -> None:
    database = tmp_path / "jingong.db"
    import fcntl

    with backup.lock_path(database).open("ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="restore"), backup.holding_database(database):
            pass


def test_pg_dump_command_hides_the_password() -> None:
    line = backup.pg_dump_command("postgresql+psycopg://jin:s3cret@db.example:5432/jingong", Path("/b/j.dump"))
    assert "s3cret" not in line
    assert line == "pg_dump --format=custom --file=/b/j.dump 'postgresql://jin@db.example:5432/jingong'"


def test_backup_without_a_database_says_to_init(tmp_path: Path) -> None:
    with pytest.raises(backup.BackupFailed, match="jingong init"):
        backup.backup(tmp_path / "none.db", tmp_path / "b.db", at=AT, data_dir=tmp_path)
