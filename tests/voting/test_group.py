"""Group commit (``voting.batch``): ballots written together keep their own answers; the SQLite
group writer takes the writer turn per batch; a failed batch fails each of its votes."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from anyio.from_thread import start_blocking_portal
from sqlalchemy import Engine
from sqlmodel import select

from campaigns.models import Campaign
from config.settings import Settings
from core.errors import Conflict, GuardFailed
from storage.db import unit_of_work, writer_line
from voting import ballots, casting, tally
from voting.ballots import Receipt
from voting.batch import BatchFailed, BatchingLane
from voting.group import GroupWriter
from voting.lane import VoteLane
from voting.models import Vote


def _open(engine: Engine) -> Callable[[Engine], object]:
    return VoteLane.open if engine.dialect.name == "postgresql" else GroupWriter.open


def test_ballots_written_together_are_judged_one_after_the_other(engine: Engine, campaign: Campaign,
                                                                  candidates: list[int],
                                                                  verified: Callable[[str], int],
                                                                  settings: Settings) -> None:
    """One batch through the lane's writer (PostgreSQL: rounds of one statement; SQLite: savepoints):
    a voter's repeat, the day's cap reached within the batch, and each receipt's live count as it
    stood after that very vote."""
    cid = campaign.id or 0
    a, b, c = verified("a@example.cn"), verified("b@example.cn"), verified("c@example.cn")

    def ballot(voter: int, nomination_id: int) -> ballots.Ballot:
        admitted = ballots.admit(engine, cid, nomination_id, voter, "10.0.0.1", settings)
        window = dataclasses.replace(admitted.window, candidates_per_day=2, show_counts=True)
        return dataclasses.replace(admitted, window=window)

    first, second, third = candidates[:3]
    batch = [ballot(a, first), ballot(b, first), ballot(a, first), ballot(a, second), ballot(c, first),
             ballot(a, third), ballot(b, third)]
    with start_blocking_portal() as portal:
        lane = portal.call(_open(engine), engine)
        try:
            outcomes = portal.call(lane.write_batch, batch)
        finally:
            portal.call(lane.close)
    assert [type(o) for o in outcomes] == [Receipt, Receipt, Conflict, Receipt, Receipt, GuardFailed, Receipt]
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert [(r.nomination_id, r.votes, r.candidates_left_today) for r in receipts] == [
        (first, 1, 1), (first, 2, 1), (second, 1, 0), (first, 3, 1), (third, 1, 0)]
    with unit_of_work(engine, readonly=True) as session:
        rows = sorted((v.voter_id, v.nomination_id) for v in session.exec(select(Vote)).all())
        assert rows == sorted([(a, first), (b, first), (a, second), (c, first), (b, third)])
        assert {r.vote_id for r in receipts} == {v.id for v in session.exec(select(Vote)).all()}
        assert tally.verify(session, cid) == []


def test_a_batch_is_cut_in_rounds_where_each_voter_appears_once() -> None:
    from voting.lane import rounds

    def fake(voter: int, cap: int = 25) -> ballots.Ballot:
        window = SimpleNamespace(candidates_per_day=cap)
        return SimpleNamespace(voter_id=voter, day="2021-07-02", window=window)  # type: ignore[return-value]

    assert rounds([fake(1), fake(2), fake(1), fake(3), fake(1), fake(2)]) == [[0, 1, 3], [2, 5], [4]]
    assert sorted(rounds([fake(1), fake(2, cap=3)])) == [[0], [1]]  # one cap per statement


def test_votes_arriving_together_share_a_transaction(engine: Engine, campaign: Campaign, candidates: list[int],
                                                     verified: Callable[[str], int], settings: Settings) -> None:
    cid = campaign.id or 0
    voters = [verified(f"crowd{i}@example.cn") for i in range(6)]

    async def crowd(lane: BatchingLane) -> list[Receipt | BaseException]:
        asks = [(v, n) for v in voters for n in candidates[:3]] + [(voters[0], candidates[0])]
        return await asyncio.gather(*(lane.cast(cid, n, v, "10.0.0.2", settings) for v, n in asks),
                                    return_exceptions=True)

    with start_blocking_portal() as portal:
        lane = portal.call(_open(engine), engine)
        try:
            outcomes = portal.call(crowd, lane)
        finally:
            portal.call(lane.close)
    assert sum(isinstance(o, Receipt) for o in outcomes) == 18
    assert [type(o) for o in outcomes if not isinstance(o, Receipt)] == [Conflict]
    assert lane.batches_written < 19  # not one transaction per vote
    with unit_of_work(engine, readonly=True) as session:
        assert tally.recount(session, cid) == dict.fromkeys(candidates[:3], 6)
        assert tally.verify(session, cid) == []


def test_the_group_writer_waits_for_the_writer_turn(sqlite_engine: Engine) -> None:
    """A committee act holding SQLite's one writer keeps the batch waiting (and then it is written)."""
    line = writer_line(sqlite_engine)
    line.acquire()  # what a committee act's unit of work holds
    started = threading.Event()

    async def write_while_held(lane: GroupWriter) -> bool:
        task = asyncio.ensure_future(lane.write_batch([]))
        started.set()
        await asyncio.sleep(0.3)
        waited = not task.done()
        line.release()
        assert await task == []
        return waited

    with start_blocking_portal() as portal:
        lane = portal.call(GroupWriter.open, sqlite_engine)
        try:
            assert portal.call(write_while_held, lane) is True
        finally:
            portal.call(lane.close)
    line.acquire()  # the batch gave the turn back
    line.release()


def test_a_failed_batch_fails_each_of_its_votes(engine: Engine, campaign: Campaign, candidates: list[int],
                                                verified: Callable[[str], int], settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cid = campaign.id or 0
    voters = [verified(f"fail{i}@example.cn") for i in range(3)]

    async def broken(self: BatchingLane, batch: object) -> list[object]:
        raise OSError("the disk went away")

    monkeypatch.setattr(VoteLane, "write_batch", broken)
    monkeypatch.setattr(GroupWriter, "write_batch", broken)

    async def crowd(lane: BatchingLane) -> list[Receipt | BaseException]:
        return await asyncio.gather(*(lane.cast(cid, candidates[0], v, "10.0.0.3", settings) for v in voters),
                                    return_exceptions=True)

    with start_blocking_portal() as portal:
        lane = portal.call(_open(engine), engine)
        try:
            outcomes = portal.call(crowd, lane)
        finally:
            portal.call(lane.close)
    assert all(isinstance(o, BatchFailed) for o in outcomes), outcomes
    assert lane.batches_written == 0
    with unit_of_work(engine, readonly=True) as session:
        assert session.exec(select(Vote)).all() == []


def test_the_sqlite_batch_writes_the_rows_the_service_writes(engine: Engine, campaign: Campaign,
                                                             candidates: list[int],
                                                             verified: Callable[[str], int],
                                                             settings: Settings) -> None:
    """The group writer's own SQL (SQLite) and ``cast_vote`` store the same columns."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the driver's own SQL serves SQLite")
    cid = campaign.id or 0
    voter = verified("same@example.cn")
    casting.cast_vote(engine, cid, candidates[0], voter, "10.0.0.4", settings)
    batched = ballots.admit(engine, cid, candidates[1], voter, "10.0.0.4", settings)
    [receipt] = casting.write_together(engine, [batched])
    assert isinstance(receipt, Receipt) and receipt.candidates_left_today == batched.window.candidates_per_day - 2
    with unit_of_work(engine, readonly=True) as session:
        rows = [v.model_dump(exclude={"id", "nomination_id", "cast_at", "minute", "receipt_hash"})
                for v in session.exec(select(Vote).order_by(Vote.id)).all()]  # type: ignore[arg-type]
        assert rows[0] == rows[1] and rows[0]["valid"] is True
        hashes = [v.receipt_hash for v in session.exec(select(Vote).order_by(Vote.id))]
        assert len(set(hashes)) == 2 and all(len(h or "") == 64 for h in hashes)  # each its own receipt
        stored = session.exec(select(Vote).where(Vote.id == receipt.vote_id)).one()
        assert stored.cast_at == batched.cast_at and stored.minute == casting.minute_of(batched.cast_at)
        assert tally.verify(session, cid) == []
