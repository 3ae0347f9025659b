"""`jingong votes correct` and `--category`: refusals are one line; a correction needs a published list."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import run


def test_corrections_need_a_published_list_and_a_known_category(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    bogus = run(tmp_path, "votes", "invalidate", "1", "--reason", "x", "--category", "bogus")
    assert bogus.returncode != 0 and "duplicate, automated, ineligible, other" in bogus.stderr
    missing = run(tmp_path, "votes", "correct", "1", "--reason", "x", "--category", "automated")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no vote 1"
    head = run(tmp_path, "audit", "head", "--campaign", "1")
    assert head.returncode == 0 and "campaign 1: chain_seq" in head.stdout
