"""The deadline rush, through real HTTP: 200 complete drafts submitted together at 17:59:59.000
and 50 at 18:00:00.050 (Beijing time, by the server's own clock), on both databases. Every one
of the first group is accepted, every one of the second refused as late, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_ADMIN_URL, _pg_available
from tests.web.rush import DEADLINE, fire, prepare_drafts, scratch_postgres, tally
from tests.web.server import running_server

pytestmark = pytest.mark.slow

ON_TIME, LATE = 200, 50


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    problem = _pg_available()
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    with scratch_postgres(PG_ADMIN_URL) as url:
        yield url


def test_every_submission_that_arrives_before_the_deadline_is_accepted(tmp_path: Path,
                                                                       database_url: str | None) -> None:
    tokens: list[str] = []
    start = (DEADLINE - timedelta(seconds=40)).isoformat()
    with running_server(tmp_path, clock_start=start, database_url=database_url,
                        prepare=lambda url: tokens.extend(prepare_drafts(url, ON_TIME + LATE)),
                        extra_args=("--no-access-log",)) as server:
        shots = fire(server.url, [
            ("17:59:59.000", DEADLINE - timedelta(seconds=1), tokens[:ON_TIME]),
            ("18:00:00.050", DEADLINE + timedelta(milliseconds=50), tokens[ON_TIME:]),
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
