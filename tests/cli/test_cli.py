"""The `jingong` command as a person runs it: a real process, one clear line on errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.campaign import DEFAULT_CAMPAIGN_FILE

JINGONG = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "JINGONG_CLOCK_START"}}
    full_env |= {"JINGONG_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "160"}
    full_env |= env or {}
    return subprocess.run([*JINGONG, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


def test_init_and_campaign_show_print_the_2021_calendar_in_beijing_time(tmp_path: Path):
    init = run(tmp_path, "init")
    assert init.returncode == 0, init.stderr
    assert "campaign loaded: jingong-2021" in init.stdout
    again = run(tmp_path, "init")  # migrating an up-to-date database is harmless
    assert again.returncode == 0, again.stderr
    show = run(tmp_path, "campaign", "show")
    assert show.returncode == 0, show.stderr
    out = show.stdout
    assert "Asia/Shanghai" in out
    assert "2021-05-31 18:00 CST" in out  # the nomination deadline, in local time
    assert "2021-07-01 00:00 CST" in out and "2021-07-11 00:00 CST" in out
    assert "10 main" in out and "shortlist 20–25" in out


def test_machine_prints_the_diagram_from_the_machine(tmp_path: Path):
    result = run(tmp_path, "machine", "--format", "mermaid")
    assert result.returncode == 0
    assert result.stdout.startswith("stateDiagram-v2")
    assert "on_hold --> disqualified: uphold_objection" in result.stdout


def test_malformed_campaign_file_is_one_line(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8").replace("Asia/Shanghai", "Mars/Olympus"),
                   encoding="utf-8")
    result = run(tmp_path, "init", "--campaign", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {bad}: timezone: unknown time zone 'Mars/Olympus'"
    assert "Traceback" not in result.stderr


def test_malformed_csv_is_one_line(tmp_path: Path):
    assert run(tmp_path, "init").returncode == 0
    bad = tmp_path / "prior.csv"
    bad.write_text("edition,award,name\n1,gold,张三\n", encoding="utf-8")
    result = run(tmp_path, "import-prior", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {bad} line 2: award 'gold' is not winner or finalist"
    good = tmp_path / "good.csv"
    good.write_text("edition,award,name\n1,winner,张三\n", encoding="utf-8")
    ok = run(tmp_path, "import-prior", str(good))
    assert ok.returncode == 0 and "imported 1 new row(s)" in ok.stdout


def test_commands_before_init_say_what_to_do(tmp_path: Path):
    result = run(tmp_path, "nominations", "list")
    assert result.returncode == 1
    assert "jingong init" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_transition_from_the_command_line(tmp_path: Path):
    assert run(tmp_path, "init").returncode == 0
    from sqlmodel import Session

    from campaigns import service as campaigns
    from config.campaign import load_campaign
    from nominations.states import State
    from storage.db import make_engine
    from tests.factories import create_nomination

    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'jingong.db'}")
    with Session(engine) as session:
        spec = load_campaign()
        campaign = campaigns.get_campaign(session)
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
        session.commit()
        nomination_id = n.id
    engine.dispose()
    refused = run(tmp_path, "transition", str(nomination_id), "reject")
    assert refused.returncode == 1 and refused.stderr.strip() == "error: reject needs a reason"
    wrong = run(tmp_path, "transition", str(nomination_id), "commend")
    assert wrong.returncode == 1 and "cannot commend" in wrong.stderr
    moved = run(tmp_path, "transition", str(nomination_id), "reject", "--reason", "材料不全", "--as", "王林")
    assert moved.returncode == 0, moved.stderr
    assert "submitted -> rejected" in moved.stdout
    shown = run(tmp_path, "nominations", "show", str(nomination_id))
    assert "user:cli:王林" in shown.stdout and "材料不全" in shown.stdout


@pytest.mark.postgres
def test_init_on_postgresql(tmp_path: Path, pg_url: str):
    result = run(tmp_path, "init", env={"DATABASE_URL": pg_url})
    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout
    show = run(tmp_path, "campaign", "show", "--slug", "jingong-2021", env={"DATABASE_URL": pg_url})
    assert "2021-05-31 18:00 CST" in show.stdout
