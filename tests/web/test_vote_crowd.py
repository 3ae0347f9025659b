"""Many votes at once through a real ``jingong serve`` (uvicorn), on both databases: votes queue in
the event loop and are written in batches (group commit), so what matters is that batching changes
no answer. Each voter asks for more candidates than the day allows and repeats one of them, all
shuffled and sent together; then every acknowledged vote is a row, every refusal is exact (one
repeat refused as already voted, the day's cap to the vote), and the counters equal the rows. A
batch that fails answers each of its votes 503 and writes none of them; a server killed mid-crowd
loses no vote it acknowledged."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import Engine, text

from config.settings import Settings
from core import clock
from nominations.states import State
from storage.db import make_engine
from tests.factories import create_nomination
from tests.web.rush import BEIJING, _preparing
from tests.web.server import running_server
from voting import tally
from voting.identities import issue_token
from voting.models import IdentityKind, VoterIdentity

pytestmark = pytest.mark.slow

CAP, CANDIDATES = 3, 5  # each voter asks for all five: two of them are over the day's cap
VOTING = "2021-07-02T09:00:00+08:00"
NO_LIMITS = {"VOTE_RATE_PER_ADDRESS_MINUTE": "0", "VOTE_RATE_PER_VOTER_MINUTE": "0"}




@dataclass
class Crowd:
    url: str = ""
    candidates: list[int] | None = None
    tokens: list[str] | None = None
    campaign_id: int = 0


def prepare(crowd: Crowd, data_dir: Path, voters: int, poison: bool = False) -> Any:
    """Shortlisted candidates, ``voters`` verified voters, a day's cap of CAP; with ``poison`` the
    database refuses every row for the last candidate (what a failing transaction looks like)."""
    def run(url: str) -> None:
        crowd.url = url
        settings = Settings.model_validate({"JINGONG_DATA_DIR": str(data_dir)})  # the server's secret key
        with _preparing(url, datetime(2021, 5, 20, 10, 0, tzinfo=BEIJING)) as (session, campaign, spec):
            voting = {**campaign.spec["voting"], "candidates_per_voter_per_day": CAP}
            campaign.spec = {**campaign.spec, "voting": voting}
            session.add(campaign)
            crowd.candidates = [create_nomination(session, campaign, spec, State.SHORTLISTED).id or 0
                                for _ in range(CANDIDATES)]
            people = [VoterIdentity(campaign_id=campaign.id or 0, kind=IdentityKind.EMAIL, identity_hash=f"crowd-{i}",
                                    created_at=clock.now(), created_minute=i) for i in range(voters)]
            session.add_all(people)
            session.flush()
            crowd.campaign_id = campaign.id or 0
            crowd.tokens = [issue_token(crowd.campaign_id, p.id or 0, settings) for p in people]
        if poison:
            _poison(url, crowd.candidates[-1])
    return run


def _poison(url: str, nomination_id: int) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"CREATE TRIGGER poison BEFORE INSERT ON vote WHEN NEW.nomination_id = "
                                 f"{nomination_id} BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
        else:
            conn.exec_driver_sql("CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'poisoned'; "
                                 "END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql(f"CREATE TRIGGER poison BEFORE INSERT ON vote FOR EACH ROW WHEN (NEW.nomination_id = "
                                 f"{nomination_id}) EXECUTE FUNCTION poison()")
    engine.dispose()


@dataclass(frozen=True)
class Answer:
    voter: int
    nomination_id: int
    status: int  # 0: no answer (connection lost)
    body: dict[str, Any]
    retry_after: str | None = None


async def _send(url: str, tokens: list[str], asks: list[tuple[int, int]], connections: int) -> list[Answer]:
    """Each (voter index, candidate id) as one POST /api/votes, ``connections`` at a time."""
    queue = list(reversed(asks))
    answers: list[Answer] = []
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), timeout=timeout) as http:
        async def worker() -> None:
            while queue:
                voter, nomination_id = queue.pop()
                try:
                    async with http.post(f"{url}/api/votes", json={"nomination_id": nomination_id},
                                         headers={"Authorization": f"Bearer {tokens[voter]}"}) as response:
                        body = await response.json(content_type=None)
                        answers.append(Answer(voter, nomination_id, response.status, body,
                                              response.headers.get("Retry-After")))
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    answers.append(Answer(voter, nomination_id, 0, {}))

        await asyncio.gather(*(worker() for _ in range(connections)))
    return answers


def _rows(database_url: str) -> tuple[Engine, dict[int, tuple[int, int]]]:
    """The vote rows by id: (voter id, nomination id)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, voter_id, nomination_id FROM vote")).all()
    return engine, {int(r[0]): (int(r[1]), int(r[2])) for r in rows}


def _wait_for_rows(database_url: str, rows: int) -> None:
    engine = make_engine(database_url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM vote")).scalar_one() >= rows:
                    return
            time.sleep(0.05)
        raise AssertionError(f"fewer than {rows} votes written in 120 s")
    finally:
        engine.dispose()


def _voter_ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(text("SELECT id FROM voter_identity ORDER BY id")).scalars()]


def _counters_match(engine: Engine, campaign_id: int) -> None:
    from storage.db import unit_of_work

    with unit_of_work(engine, readonly=True) as session:
        assert tally.verify(session, campaign_id) == []


def test_a_crowd_of_votes_gets_exact_answers(tmp_path: Path, database_url: str | None) -> None:
    voters = 120
    crowd = Crowd()
    with running_server(tmp_path, clock_start=VOTING, database_url=database_url, env=NO_LIMITS,
                        prepare=prepare(crowd, tmp_path / "data", voters), extra_args=("--no-access-log",)) as server:
        assert crowd.candidates and crowd.tokens
        repeat = {v: crowd.candidates[v % CANDIDATES] for v in range(voters)}
        asks = [(v, c) for v in range(voters) for c in crowd.candidates] + list(repeat.items())
        random.Random(13).shuffle(asks)
        answers = asyncio.run(_send(server.url, crowd.tokens, asks, connections=64))
        assert "Traceback" not in server.output()
    assert Counter(a.status for a in answers).keys() <= {201, 409, 422}, Counter(a.status for a in answers)
    engine, rows = _rows(crowd.url)
    try:
        ids = _voter_ids(engine)
        accepted = [a for a in answers if a.status == 201]
        # every acknowledged vote is its row, and there is no other row
        assert {a.body["vote_id"]: (ids[a.voter], a.nomination_id) for a in accepted} == rows
        for v in range(voters):
            # the day's cap exactly; the repeat refused as already voted, unless over the cap twice
            mine = Counter(a.status for a in answers if a.voter == v)
            assert mine in (Counter({201: CAP, 409: 1, 422: CANDIDATES - CAP}),
                            Counter({201: CAP, 422: CANDIDATES - CAP + 1})), (v, mine)
            pair = sorted(a.status for a in answers if a.voter == v and a.nomination_id == repeat[v])
            assert pair in ([201, 409], [422, 422]), (v, pair)
        assert all(f"最多为{CAP}名候选人" in a.body["detail_zh"] for a in answers if a.status == 422)
        assert all("已为该候选人投过一票" in a.body["detail_zh"] for a in answers if a.status == 409)
        _counters_match(engine, crowd.campaign_id)
    finally:
        engine.dispose()


def test_a_failed_batch_answers_each_of_its_votes_503_and_writes_none(tmp_path: Path,
                                                                      database_url: str | None) -> None:
    voters = 300
    crowd = Crowd()
    with running_server(tmp_path, clock_start=VOTING, database_url=database_url, env=NO_LIMITS,
                        prepare=prepare(crowd, tmp_path / "data", voters, poison=True),
                        extra_args=("--no-access-log",)) as server:
        assert crowd.candidates and crowd.tokens
        poisoned = crowd.candidates[-1]
        # one vote in 50 is poisoned: however large the batches grow on a busy machine, most of
        # them hold none, and those that do fail whole
        asks = [(v, poisoned if v % 50 == 0 else crowd.candidates[v % (CANDIDATES - 1)]) for v in range(voters)]
        answers = asyncio.run(_send(server.url, crowd.tokens, asks, connections=64))
    statuses = Counter(a.status for a in answers)
    assert statuses.keys() == {201, 503}, statuses
    assert all(a.status == 503 for a in answers if a.nomination_id == poisoned)
    failed = [a for a in answers if a.status == 503]
    assert all("未能写入" in a.body["detail_zh"] and a.retry_after for a in failed)
    engine, rows = _rows(crowd.url)
    try:
        ids = _voter_ids(engine)
        assert {a.body["vote_id"]: (ids[a.voter], a.nomination_id) for a in answers if a.status == 201} == rows
        _counters_match(engine, crowd.campaign_id)
    finally:
        engine.dispose()


def test_a_server_killed_mid_crowd_loses_no_acknowledged_vote(tmp_path: Path, database_url: str | None) -> None:
    voters = 4000
    crowd = Crowd()
    answers: list[Answer] = []
    with running_server(tmp_path, clock_start=VOTING, database_url=database_url, env=NO_LIMITS,
                        prepare=prepare(crowd, tmp_path / "data", voters), extra_args=("--no-access-log",)) as server:
        assert crowd.candidates and crowd.tokens
        asks = [(v, crowd.candidates[v % CANDIDATES]) for v in range(voters)]
        sender = threading.Thread(target=lambda: answers.extend(
            asyncio.run(_send(server.url, crowd.tokens or [], asks, connections=64))))
        sender.start()
        _wait_for_rows(crowd.url, 300)  # the crowd is under way (its answers are gathered at its end)
        os.kill(server.pid, signal.SIGKILL)
        sender.join(120)
    acknowledged = [a for a in answers if a.status == 201]
    assert acknowledged and len(acknowledged) < voters, Counter(a.status for a in answers)
    engine, rows = _rows(crowd.url)
    try:
        ids = _voter_ids(engine)
        for a in acknowledged:
            assert rows.get(a.body["vote_id"]) == (ids[a.voter], a.nomination_id)
        _counters_match(engine, crowd.campaign_id)
    finally:
        engine.dispose()
