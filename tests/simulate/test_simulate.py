"""`jingong simulate`: a whole campaign on a virtual clock, the same result for the same seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulate.service import simulate

ROOT = Path(__file__).resolve().parents[2]


def test_same_seed_same_campaign_to_the_commendation() -> None:
    lines: list[str] = []
    first = simulate(150, 11, say=lines.append)
    second = simulate(150, 11, say=lambda _: None)
    assert (first.counts, first.mails, first.votes, first.late_refused) == \
        (second.counts, second.mails, second.votes, second.late_refused)
    assert sum(first.counts.values()) == 150
    assert first.counts["commended"] == 20  # 10 main + 10 finalist
    assert first.late_refused > 0 and first.votes > 0 and first.second_votes_refused > 0
    assert any("nomination:close" in line for line in lines)
    assert any("tally frozen" in line for line in lines)
    other = simulate(150, 12, say=lambda _: None)
    assert (other.counts, other.votes) != (first.counts, first.votes)


def test_the_command_prints_plain_lines_off_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "simulate", "--nominations", "60", "--seed", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "JINGONG_DATA_DIR": str(tmp_path), "COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout  # no progress bar, no colours
    assert "nomination:close" in done.stdout and "votes counted:" in done.stdout
    assert "commended" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "cli.main", "simulate", "--nominations", "0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--nominations" in bad.stderr


def test_every_seed_reaches_the_commendation() -> None:
    for seed in (1, 2, 3, 4):
        report = simulate(120, seed, say=lambda _: None)
        assert report.reached_commendation and report.blocked == [], (seed, report.blocked)
        assert 0 < report.counts["commended"] <= 20


def test_a_campaign_that_stops_short_exits_non_zero(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "simulate", "--nominations", "15", "--seed", "1",
                           "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "JINGONG_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: the campaign did not reach commendation: screening:close: "
                                   "初步候选人为15名，须为20至25名")


@pytest.mark.slow
def test_the_shortfall_seed_reaches_the_commendation_by_a_decision(tmp_path: Path) -> None:
    """2,000 nominations, seed 7: prior finalists leave the finalist track short; the simulated
    committee decides the shortfall as the office would, and the campaign runs to its end."""
    lines: list[str] = []
    report = simulate(2000, 7, say=lines.append)
    assert report.reached_commendation, report.blocked
    assert any("shortfall decided" in line for line in lines)
    assert report.counts["commended"] < 20
