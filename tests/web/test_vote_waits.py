"""No vote waits without end: with the app's lifespan (the vote lane or SQLite's group writer on the
test client's event loop), votes that the FastAPI route answers (a body the fast path leaves to it,
such as one with an extra field) and votes of the fast path, sent together from several threads
while other writers take SQLite's writer turn, are all answered in seconds, and every acknowledged
vote is a row. The same while the app's lifespan is started and stopped again and again (each test
client's lifespan runs on an event loop of its own), on both databases.

Before: on SQLite the route's vote held the writer turn from ``web.admission`` while the group
writer's batch carrying that very vote waited for the turn: the vote hung for the line's patience
(60 s) and was answered 503, after the fuzzer's 10 s read timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from campaigns.models import Campaign
from config.campaign import CampaignSpec
from core.clock import ManualClock
from nominations.states import State
from storage.db import unit_of_work, writer_line
from tests.conftest import beijing
from tests.factories import create_nomination
from tests.voting.conftest import code_from_outbox, fresh_limits  # noqa: F401 - fixture
from voting import codes
from voting.group import GroupWriter

#: seconds a vote may take here at most (each is answered in well under one)
ANSWER_WITHIN = 8.0


def _ballot(engine: Engine, campaign: Campaign, spec: CampaignSpec, clock: ManualClock,
            app: FastAPI, voters: int) -> tuple[list[int], list[str]]:
    with unit_of_work(engine) as session:
        ids = [create_nomination(session, campaign, spec, State.SHORTLISTED).id for _ in range(3)]
    clock.set(beijing(2021, 7, 2, 9, 0))
    tokens = []
    for i in range(voters):
        address = f"wait{i}@example.cn"
        codes.request_code(engine, campaign.id or 0, "email", address, f"10.8.0.{i}", app.state.settings)
        tokens.append(codes.confirm_code(engine, campaign.id or 0, "email", address,
                                         code_from_outbox(engine, address), f"10.8.0.{i}", app.state.settings))
    return [int(i or 0) for i in ids], tokens


def _vote(client: TestClient, token: str, nomination_id: int, routed: bool) -> tuple[int, float, Any]:
    # an extra field: the fast path (web.vote_path) leaves the body to the FastAPI route
    body: dict[str, Any] = {"nomination_id": nomination_id, **({"note": "x"} if routed else {})}
    started = time.monotonic()
    response = client.post("/api/votes", json=body, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, time.monotonic() - started, response.json()


def _together(jobs: list[Callable[[], tuple[int, float, Any]]]) -> list[tuple[int, float, Any]]:
    """Run the jobs in threads at once; each must finish within ANSWER_WITHIN (plus start-up)."""
    results: list[tuple[int, float, Any] | BaseException | None] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + ANSWER_WITHIN + 5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"votes still unanswered: {results}"
    for result in results:
        assert not isinstance(result, BaseException), result
    return [r for r in results if r is not None and not isinstance(r, BaseException)]


def _other_writer(engine: Engine, stop: threading.Event) -> threading.Thread:
    """A committee act after another (each a unit of work taking the writer turn), until stopped."""
    def acts() -> None:
        while not stop.is_set():
            with unit_of_work(engine) as session:
                session.execute(text("update campaign set name = name"))
            time.sleep(0.005)

    thread = threading.Thread(target=acts, daemon=True)
    thread.start()
    return thread


def _assert_rows(engine: Engine, receipts: list[Any]) -> None:
    with unit_of_work(engine, readonly=True) as session:
        rows = {int(r[0]) for r in session.execute(text("select id from vote")).all()}
    assert rows == {int(r["vote_id"]) for r in receipts}


def test_votes_of_the_route_and_the_fast_path_are_answered_while_others_write(
        engine: Engine, campaign: Campaign, spec: CampaignSpec, clock: ManualClock, app: FastAPI) -> None:
    candidates, tokens = _ballot(engine, campaign, spec, clock, app, voters=6)
    stop = threading.Event()
    writer = _other_writer(engine, stop)
    try:
        with TestClient(app) as client:
            assert app.state.vote_lane is not None  # the lifespan opened the lane on its loop
            jobs = [(lambda c=client, t=token, n=n, r=(i + n) % 2 == 0: _vote(c, t, n, r))
                    for i, token in enumerate(tokens) for n in candidates]
            results = _together(jobs)
    finally:
        stop.set()
        writer.join(10)
    assert [status for status, _, _ in results] == [201] * len(jobs), results
    assert max(took for _, took, _ in results) < ANSWER_WITHIN, sorted(took for _, took, _ in results)
    _assert_rows(engine, [body for _, _, body in results])


def test_votes_across_lifespans_started_and_stopped_again(
        engine: Engine, campaign: Campaign, spec: CampaignSpec, clock: ManualClock, app: FastAPI) -> None:
    """Each round a new lifespan (a new event loop, a new lane), votes sent together, the lifespan
    stopped; another writer takes the writer turn throughout, across the loops."""
    candidates, tokens = _ballot(engine, campaign, spec, clock, app, voters=4)
    stop = threading.Event()
    writer = _other_writer(engine, stop)
    acknowledged: list[Any] = []
    try:
        for candidate in candidates:
            with TestClient(app) as client:
                jobs = [(lambda c=client, t=token, n=candidate, r=(i % 2 == 0): _vote(c, t, n, r))
                        for i, token in enumerate(tokens)]
                results = _together(jobs)
            assert [status for status, _, _ in results] == [201] * len(jobs), results
            acknowledged += [body for _, _, body in results]
        # and once more without a lifespan (worker threads), after the loops are gone
        client = TestClient(app)
        late = _together([lambda: _vote(client, tokens[0], candidates[0], False)])
        assert late[0][0] == 409  # already voted for it today: the first round's vote counted
    finally:
        stop.set()
        writer.join(10)
    _assert_rows(engine, acknowledged)
    assert len(acknowledged) == len(tokens) * len(candidates)



def test_a_vote_that_cannot_get_the_writer_turn_is_answered_503_and_not_written(
        engine: Engine, campaign: Campaign, spec: CampaignSpec, clock: ManualClock, app: FastAPI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer holds SQLite's turn past the group writer's patience: the vote (either path)
    is answered 503 with Retry-After and a Chinese message, in bounded time, and nothing is
    written; once the turn is free the same vote is counted."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's writer turn")
    monkeypatch.setattr(GroupWriter, "turn_patience", 0.5)
    candidates, tokens = _ballot(engine, campaign, spec, clock, app, voters=1)
    line = writer_line(engine)
    with TestClient(app) as client:
        line.acquire()  # a committee act that takes long
        try:
            refused = _together([lambda: _vote(client, tokens[0], candidates[0], False),
                                 lambda: _vote(client, tokens[0], candidates[1], True)])
            again = client.post("/api/votes", json={"nomination_id": candidates[2]},
                                headers={"Authorization": f"Bearer {tokens[0]}"})
            assert again.status_code == 503 and again.headers["retry-after"] == "5", again.headers
        finally:
            line.release()
        for status, took, body in refused:
            assert status == 503 and took < 3, (status, took, body)
            assert "未计票" in body["detail_zh"]
        _assert_rows(engine, [])
        response = client.post("/api/votes", json={"nomination_id": candidates[0]},
                               headers={"Authorization": f"Bearer {tokens[0]}"})
        assert response.status_code == 201, response.text
        busy = client.post("/api/votes", json={"nomination_id": candidates[1]},
                           headers={"Authorization": f"Bearer {tokens[0]}"})
    assert busy.status_code == 201
    _assert_rows(engine, [response.json(), busy.json()])
