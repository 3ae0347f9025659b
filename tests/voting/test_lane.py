"""The vote lane (PostgreSQL): what it adds to the service's rules, which tests/voting/test_service.py
runs through it too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from anyio.from_thread import start_blocking_portal
from sqlalchemy import Engine, text
from sqlmodel import select

from campaigns.models import Campaign
from config.settings import Settings
from storage.db import unit_of_work
from voting import tally
from voting.lane import APPLICATION_NAME, CONNECTIONS, VoteLane
from voting.models import Vote


def test_the_lane_needs_postgresql(sqlite_engine: Engine) -> None:
    with start_blocking_portal() as portal, pytest.raises(ValueError, match="needs PostgreSQL"):
        portal.call(VoteLane.open, sqlite_engine)


def test_a_connection_lost_to_a_database_restart_loses_no_vote(engine: Engine, campaign: Campaign,
                                                              candidates: list[int],
                                                              verified: Callable[[str], int],
                                                              settings: Settings) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the vote lane serves PostgreSQL")
    cid = campaign.id or 0
    voter = verified("lost@example.cn")
    with start_blocking_portal() as portal:
        lane = portal.call(VoteLane.open, engine)
        try:
            assert portal.call(lane.cast, cid, candidates[0], voter, "10.0.0.1", settings).vote_id > 0
            with engine.connect() as conn:  # what a restart does to the lane's connections
                killed = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                           "WHERE application_name = :name AND datname = current_database()"),
                                   {"name": APPLICATION_NAME}).scalar()
            assert killed == CONNECTIONS
            assert portal.call(lane.cast, cid, candidates[1], voter, "10.0.0.1", settings).vote_id > 0
        finally:
            portal.call(lane.close)
    with unit_of_work(engine, readonly=True) as session:
        assert sorted(v.nomination_id for v in session.exec(select(Vote)).all()) == candidates[:2]
        assert tally.verify(session, cid) == []


def test_the_lane_answers_only_on_its_own_loop(pg_engine: Engine) -> None:
    with start_blocking_portal() as first, start_blocking_portal() as second:
        lane = first.call(VoteLane.open, pg_engine)
        try:
            assert first.call(_serves, lane) is True
            assert second.call(_serves, lane) is False
        finally:
            first.call(lane.close)


async def _serves(lane: VoteLane) -> bool:
    return lane.serves_this_loop()


async def _plan_cache_mode(lane: VoteLane) -> str:
    async with lane._pool.acquire() as connection:
        return str(await connection.fetchval("SHOW plan_cache_mode"))


def test_the_lane_plans_each_batch_for_its_own_arrays(pg_engine: Engine) -> None:
    """A generic plan made while ``vote`` was empty scanned the whole table in every batch after
    (the bench's PostgreSQL server spent 1.1 ms per vote and slowed round after round)."""
    with start_blocking_portal() as portal:
        lane = portal.call(VoteLane.open, pg_engine)
        try:
            assert portal.call(_plan_cache_mode, lane) == "force_custom_plan"
        finally:
            portal.call(lane.close)
