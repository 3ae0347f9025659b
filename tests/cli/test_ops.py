"""`jingong backup`, `restore`, `doctor`, and a read-only or full data folder at start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accounts import service as accounts
from audit import service as audit
from cli.main import app
from config.settings import get_settings
from core import clock
from core.actor import Actor, ActorKind
from storage import backup
from storage.db import dispose_engines, get_engine, unit_of_work
from storage.migrate import create_all
from tests.mounts import fill, tmpfs
from wiring.tables import metadata

JINGONG = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = {"DATABASE_URL", "SECRET_KEY", "ADMIN_PASSWORD", "SMTP_HOST", "PUBLIC_BASE_URL",
                      "FORWARDED_ALLOW_IPS", "MAIL_OUTBOX_DIR", "JINGONG_CLOCK_START"}
READY = {"SECRET_KEY": "k" * 48, "PUBLIC_BASE_URL": "https://jingong.example.cn", "SMTP_HOST": "smtp.example.cn",
         "FORWARDED_ALLOW_IPS": "10.0.0.2"}


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None,
        command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    full_env |= {"JINGONG_DATA_DIR": str(data_dir), "COLUMNS": "200"} | (env or {})
    return subprocess.run([*(command or JINGONG), *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=180)


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in errors[0], errors[0]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from the environment of this test only, a migrated SQLite database under it."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "var"
    monkeypatch.setenv("JINGONG_DATA_DIR", str(folder))
    get_settings.cache_clear()
    create_all(get_engine(), metadata)
    yield folder
    dispose_engines()
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, list[str]]:
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output.splitlines()


def _admin(password_changed: bool) -> None:
    with unit_of_work(get_engine()) as session:
        accounts.ensure_admin(session, "admin", None)
        if password_changed:
            audit.record(session, actor=Actor(ActorKind.USER, "cli:test"), action="password_set",
                         subject="user:admin")


def test_doctor_lists_what_is_not_ready(data_dir: Path) -> None:
    _admin(password_changed=False)
    code, lines = invoke("doctor")
    assert code == 1
    not_ready = [line for line in lines if line.startswith("NOT READY")]
    assert [line.split(":")[0].removeprefix("NOT READY").strip() for line in not_ready] == [
        "secret key", "admin password", "public address", "mail", "backup"]
    assert any("jingong users passwd admin" in line for line in not_ready)
    assert any("mails stay in the local outbox" in line for line in not_ready)
    assert any("no backup recorded" in line for line in not_ready)
    assert any(line.startswith("note") and "SQLite: run one instance only" in line for line in lines)
    assert any(line.startswith("note") and "X-Forwarded-For is not trusted" in line for line in lines)
    assert lines[-1] == "5 thing(s) not ready for a public deployment"


def test_doctor_passes_when_everything_is_ready(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    for name, value in READY.items():
        monkeypatch.setenv(name, value)
    _admin(password_changed=True)
    assert invoke("backup", str(tmp_path / "b.db"))[0] == 0
    code, lines = invoke("doctor")
    assert code == 0, lines
    assert not any(line.startswith("NOT READY") for line in lines)
    assert any("X-Forwarded-For is trusted from 10.0.0.2 only" in line for line in lines)
    assert lines[-1] == "ready for a public deployment"


@pytest.mark.parametrize(("env", "finding"), [
    ({"ADMIN_PASSWORD": "first-password-1"}, "ADMIN_PASSWORD is set"),
    ({"FORWARDED_ALLOW_IPS": "*"}, "anyone can forge X-Forwarded-For"),
    ({"FORWARDED_ALLOW_IPS": ""}, "every voter would appear as the proxy's address"),
    ({"PUBLIC_BASE_URL": "http://jingong.example.cn"}, "not https"),
])
def test_doctor_flags_each_setting(data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                   env: dict[str, str], finding: str) -> None:
    for name, value in (READY | env).items():
        monkeypatch.setenv(name, value)
    _admin(password_changed=True)
    invoke("backup", str(tmp_path / "b.db"))
    code, lines = invoke("doctor")
    assert code == 1
    assert [line for line in lines if line.startswith("NOT READY")] == [
        next(line for line in lines if finding in line)]


def test_doctor_flags_a_backup_older_than_a_day(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in READY.items():
        monkeypatch.setenv(name, value)
    _admin(password_changed=True)
    old = backup.BackupReport(path=data_dir / "b.db", size=1, at=clock.wall_now() - timedelta(days=1, minutes=1))
    backup.record_backup(data_dir, old)
    code, lines = invoke("doctor")
    assert code == 1 and any("more than a day ago" in line for line in lines if line.startswith("NOT READY"))


def test_backup_prints_what_it_wrote_and_restore_puts_it_back(data_dir: Path, tmp_path: Path) -> None:
    _admin(password_changed=False)
    code, lines = invoke("backup", str(tmp_path / "copies" / "b.db"))
    assert code == 0
    assert lines[0].startswith(f"backup written: {tmp_path / 'copies' / 'b.db'} (") and "bytes) as of 20" in lines[0]
    assert "integrity check ok" in lines[1] and "  user: 1" in lines
    with unit_of_work(get_engine()) as session:
        accounts.create_user(session, "later", "correct-horse-42", accounts.Role.REVIEWER)
    code, lines = invoke("restore", str(tmp_path / "copies" / "b.db"))
    assert code == 0 and lines[0].startswith(f"restored {data_dir / 'jingong.db'} from")
    with unit_of_work(get_engine(), readonly=True) as session:
        assert [u.username for u in accounts.list_users(session)] == ["admin"]
    assert (data_dir / "jingong.db.before-restore").exists()


def test_backup_on_postgresql_prints_pg_dump(pg_url: str, tmp_path: Path) -> None:
    result = run(tmp_path, "backup", str(tmp_path / "j.dump"), env={"DATABASE_URL": pg_url})
    assert result.returncode == 0, result.stderr
    assert "pg_dump --format=custom --file=" in result.stdout and "postgresql://" in result.stdout
    assert "+psycopg" not in result.stdout


def test_backup_on_an_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "backup", str(tmp_path / "j.dump"),
                 env={"DATABASE_URL": "postgresql://jin:s3cret@127.0.0.1:1/jingong"})
    assert_one_line(result, "PostgreSQL does not answer")
    assert "s3cret" not in result.stderr


@pytest.mark.slow
def test_restore_is_refused_while_jingong_serve_runs(tmp_path: Path) -> None:
    from tests.web.server import running_server

    with running_server(tmp_path) as server:
        made = run(server.data_dir, "backup", str(tmp_path / "b.db"))
        assert made.returncode == 0, made.stderr
        refused = run(server.data_dir, "restore", str(tmp_path / "b.db"))
        assert_one_line(refused, "in use by a running `jingong serve`", "stop it, then restore")
    assert not (server.data_dir / "jingong.db.before-restore").exists()
    restored = run(server.data_dir, "restore", str(tmp_path / "b.db"))
    assert restored.returncode == 0, restored.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "1"], ["scheduler"]])
def test_a_read_only_data_folder_at_start_is_one_line(tmp_path: Path, command: list[str]) -> None:
    with tmpfs(tmp_path / "mnt", readonly=True) as mnt:
        result = run(mnt / "var", *command)
    assert_one_line(result, str(mnt), "read-only file system", "make it writable")
    assert result.returncode == 1


@pytest.mark.slow
def test_a_full_data_folder_at_start_is_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", size="2m") as mnt:
        assert run(mnt / "var", "init").returncode == 0
        fill(mnt)
        for command in (["init"], ["serve", "--port", "1"]):
            result = run(mnt / "var", *command)
            assert_one_line(result, str(mnt / "var"), "is full: free some space")


@pytest.mark.slow
def test_dev_py_serve_on_a_read_only_data_folder_stops_with_one_line(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "jingong").exists():
        pytest.skip("dev.py serve runs .venv/bin/jingong, not installed in this checkout")
    with tmpfs(tmp_path / "mnt", readonly=True) as mnt:
        result = run(mnt / "var", "serve", command=["python3", str(ROOT / "dev.py")])
    assert result.returncode == 1
    assert_one_line(result, str(mnt), "read-only file system")
