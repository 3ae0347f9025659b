"""A read-only or full data folder, for real (a small tmpfs), at start and while running."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from config.settings import Settings
from storage import faults
from storage.db import make_engine
from tests.mounts import fill, remount, tmpfs


def _settings(data_dir: Path) -> Settings:
    return Settings.model_validate({"JINGONG_DATA_DIR": str(data_dir)})


def test_a_read_only_data_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", readonly=True) as mnt:
        with pytest.raises(faults.StorageUnavailable) as caught:
            faults.preflight(_settings(mnt))
    line = str(caught.value)
    assert "\n" not in line and str(mnt) in line and "read-only file system" in line and "writable" in line


def test_a_read_only_database_file_is_refused(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt") as mnt:
        data = mnt / "data"
        faults.preflight(_settings(data))  # creates the folders
        (data / "jingong.db").write_bytes(b"")
        remount(mnt, readonly=True)
        with pytest.raises(faults.StorageUnavailable, match="not writable"):
            faults.preflight(_settings(data))


def test_a_full_data_folder_is_refused_and_accepted_once_space_returns(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", size="2m") as mnt:
        settings = _settings(mnt / "data")
        faults.preflight(settings)
        filler = fill(mnt)
        with pytest.raises(faults.StorageUnavailable) as caught:
            faults.preflight(settings)
        assert "is full: free some space" in str(caught.value)
        filler.unlink()
        faults.preflight(settings)
        assert [p.name for p in (mnt / "data").iterdir() if p.name.startswith(".jingong-probe")] == []


def test_sqlite_on_a_full_disk_fails_cleanly_and_recovers(tmp_path: Path) -> None:
    """What the running service meets: "database or disk is full", nothing half-written, and
    writes work again once space returns."""
    with tmpfs(tmp_path / "mnt", size="2m") as mnt:
        engine = make_engine(f"sqlite:///{mnt / 'jingong.db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
            conn.exec_driver_sql("INSERT INTO t (payload) VALUES (zeroblob(1000))")
        filler = fill(mnt)
        with pytest.raises(OperationalError) as caught, engine.begin() as conn:
            for _ in range(50):
                conn.exec_driver_sql("INSERT INTO t (payload) VALUES (zeroblob(65536))")
        assert faults.disk_full(caught.value)
        assert "is full" in (faults.storage_fault(caught.value, mnt) or "")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1  # all or nothing
        filler.unlink()
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t (payload) VALUES (zeroblob(65536))")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()


@pytest.mark.parametrize(("exc", "full"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (OSError(errno.EROFS, "Read-only file system"), False),
    (sqlite3.OperationalError("database or disk is full"), True),
    (sqlite3.OperationalError("database is locked"), False),
    (ValueError("no"), False),
])
def test_disk_full_recognises_the_faults(exc: BaseException, full: bool) -> None:
    assert faults.disk_full(exc) is full


def test_storage_fault_names_the_path_or_stays_silent(tmp_path: Path) -> None:
    readonly = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x"))
    assert faults.storage_fault(readonly, tmp_path) == (
        f"{tmp_path / 'x'} is not writable (read-only file system): make it writable for this user "
        "(or point JINGONG_DATA_DIR elsewhere), then start again")
    assert "readonly database" in (faults.storage_fault(
        sqlite3.OperationalError("attempt to write a readonly database"), tmp_path) or "")
    assert faults.storage_fault(sqlite3.OperationalError("no such table: x"), tmp_path) is None
    assert faults.storage_fault(OSError(errno.ECONNREFUSED, "refused"), tmp_path) is None
