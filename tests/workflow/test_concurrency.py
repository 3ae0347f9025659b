"""Two processes change the same nomination at once: exactly one wins."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pytest

from config.campaign import load_campaign
from core.actor import Actor
from core.errors import JingongError
from nominations.models import Nomination
from nominations.states import State
from stages import service as stages
from storage.db import make_engine, unit_of_work
from tests.factories import create_nomination
from workflow import queries
from workflow import service as workflow
from workflow.machine import Event


def _contender(url: str, nomination_id: int, event: str, version: int, barrier: Any, out: Any) -> None:
    engine = make_engine(url)
    barrier.wait(timeout=30)
    try:
        with unit_of_work(engine) as session:
            reason = "不符合条件" if event == Event.REJECT else None
            workflow.transition(session, nomination_id, event, actor=Actor.system(f"proc-{event}"),
                                reason=reason, expected_version=version)
        out.put((event, "won"))
    except JingongError as exc:
        out.put((event, f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


def _race(url: str, rounds: int) -> list[list[tuple[str, str]]]:
    spec = load_campaign()
    engine = make_engine(url)
    ctx = mp.get_context("spawn")
    results = []
    try:
        for _ in range(rounds):
            with unit_of_work(engine) as session:
                campaign = stages.load_campaign(session, spec)
                n = create_nomination(session, campaign, spec, State.SUBMITTED)
                nomination_id, version = n.id, n.version
            barrier, out = ctx.Barrier(2), ctx.Queue()
            procs = [
                ctx.Process(target=_contender, args=(url, nomination_id, ev, version, barrier, out))
                for ev in (Event.PASS_SCREENING, Event.REJECT)
            ]
            for p in procs:
                p.start()
            for p in procs:
                p.join(60)
            outcome = sorted(out.get(timeout=5) for _ in procs)
            with unit_of_work(engine) as session:
                row = session.get(Nomination, nomination_id)
                log = queries.history(session, nomination_id)
            winners = [ev for ev, res in outcome if res == "won"]
            assert len(winners) == 1, outcome
            losers = [res for _, res in outcome if res != "won"]
            assert losers[0].startswith("ConcurrentChange"), outcome
            expected = State.SCREENED if winners[0] == Event.PASS_SCREENING else State.REJECTED
            assert row.state == expected and row.version == version + 1
            assert [r.event for r in log] == ["submit", winners[0]]
            results.append(outcome)
    finally:
        engine.dispose()
    return results


@pytest.mark.slow
def test_two_processes_exactly_one_wins_on_postgresql(pg_engine, pg_url, clock):
    assert len(_race(pg_url, rounds=3)) == 3


@pytest.mark.slow
def test_two_processes_exactly_one_wins_on_sqlite(sqlite_engine, clock):
    assert len(_race(sqlite_engine.url.render_as_string(), rounds=2)) == 2
