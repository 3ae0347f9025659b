"""Rushes at the clock's edges, through real HTTP, on both databases: 200 complete drafts submitted
together at 17:59:59.000 and 50 at 18:00:00.050 (Beijing time, by the server's own clock); the
same around the voting close and the public notice's close. Every request of the first group is
accepted, every one of the second refused as late, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.web.rush import (
    DEADLINE,
    NOTICE_CLOSES,
    VOTING_CLOSES,
    Req,
    created,
    fire,
    prepare_drafts,
    prepare_objections,
    prepare_voting,
    submissions,
    tally,
)
from tests.web.server import running_server

pytestmark = pytest.mark.slow

ON_TIME, LATE = 200, 50




def test_every_submission_that_arrives_before_the_deadline_is_accepted(tmp_path: Path,
                                                                       database_url: str | None) -> None:
    tokens: list[str] = []
    start = (DEADLINE - timedelta(seconds=40)).isoformat()
    with running_server(tmp_path, clock_start=start, database_url=database_url,
                        prepare=lambda url: tokens.extend(prepare_drafts(url, ON_TIME + LATE)),
                        extra_args=("--no-access-log",)) as server:
        shots = fire(server.url, [
            ("17:59:59.000", DEADLINE - timedelta(seconds=1), submissions(tokens[:ON_TIME])),
            ("18:00:00.050", DEADLINE + timedelta(milliseconds=50), submissions(tokens[ON_TIME:])),
        ])
        on_time, late = tally(shots, "17:59:59.000"), tally(shots, "18:00:00.050")
        odd = [s for s in shots if s.status not in (200, 422)][:5]
        assert (on_time.accepted, on_time.errors) == (ON_TIME, 0), (on_time.line(), odd)
        assert (late.late, late.errors) == (LATE, 0), (late.line(), odd)
        # the record shows the instant the submission arrived, before the deadline
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = client.get(f"/api/nominations/{tokens[0]}").json()
        submit = next(h for h in body["history"] if h["event"] == "submit")
        assert DEADLINE - timedelta(seconds=1) <= datetime.fromisoformat(submit["received_at"]) < DEADLINE
        assert "Traceback" not in server.output()


def _edge(tmp_path: Path, database_url: str | None, closes: datetime,
          prepare: Callable[[str], list[Req]], before: int, after: int) -> None:
    reqs: list[Req] = []
    with running_server(tmp_path, clock_start=(closes - timedelta(seconds=40)).isoformat(),
                        database_url=database_url, prepare=lambda url: reqs.extend(prepare(url)),
                        extra_args=("--no-access-log",),
                        env={"VOTE_RATE_PER_ADDRESS_MINUTE": "0", "VOTE_RATE_PER_VOTER_MINUTE": "0"}) as server:
        shots = fire(server.url, [
            ("just before", closes - timedelta(seconds=1), reqs[:before]),
            ("just after", closes + timedelta(milliseconds=50), reqs[before:before + after]),
        ])
        on_time, late = tally(shots, "just before", created), tally(shots, "just after", created)
        odd = [s for s in shots if s.status not in (201, 422)][:5]
        sent_late = max(s.sent_late for s in shots if s.group == "just before")  # the generator's own delay
        assert (on_time.accepted, on_time.errors) == (before, 0), (on_time.line(), odd, f"sent {sent_late:.2f}s late")
        assert (late.late, late.errors) == (after, 0), (late.line(), odd)
        assert "Traceback" not in server.output()


def test_every_vote_that_arrives_before_the_voting_close_counts(tmp_path: Path, database_url: str | None) -> None:
    _edge(tmp_path, database_url, VOTING_CLOSES, lambda url: prepare_voting(url, tmp_path / "data", 250),
          before=200, after=50)


def test_every_objection_that_arrives_before_the_notice_closes_is_lodged(tmp_path: Path,
                                                                          database_url: str | None) -> None:
    _edge(tmp_path, database_url, NOTICE_CLOSES, lambda url: prepare_objections(url, 80), before=60, after=20)
