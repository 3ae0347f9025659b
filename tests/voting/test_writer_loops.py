"""State of one event loop does not outlive it: SQLite's writer turn is never lost to a loop that
is gone (a test client's lifespan ends, a new one starts on a new loop), and no vote waits for its
turn without end."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import pytest
from anyio.from_thread import start_blocking_portal
from sqlalchemy import Engine
from sqlmodel import select

from campaigns.models import Campaign
from config.settings import Settings
from core.errors import DatabaseBusy
from storage.db import WriterLine, unit_of_work, writer_line, writer_turn
from voting import casting
from voting.ballots import Ballot, Receipt
from voting.batch import BatchFailed
from voting.group import GroupWriter
from voting.models import Vote


def _waiter_on_a_loop_that_dies(line: WriterLine) -> None:
    """Queue for the turn in an event loop that then stops and closes without the waiter leaving
    the line (its thread ended: the loop's owner is gone)."""
    loop = asyncio.new_event_loop()
    queued = threading.Event()

    async def wait() -> None:
        task = asyncio.ensure_future(line.acquire_async())
        await asyncio.sleep(0)  # it is in the line now
        queued.set()
        await asyncio.sleep(0.05)
        assert not task.done()

    loop.run_until_complete(wait())
    loop.close()  # the waiter's task never runs again
    assert queued.is_set()


def test_the_turn_skips_a_waiter_whose_loop_is_gone() -> None:
    line = WriterLine(patience=2)
    line.acquire()
    _waiter_on_a_loop_that_dies(line)
    line.release()  # hands over past the dead waiter (before: RuntimeError, the turn lost for good)
    started = time.monotonic()
    line.acquire()
    assert time.monotonic() - started < 0.5
    line.release()


def test_a_live_waiter_after_a_dead_one_gets_the_turn() -> None:
    line = WriterLine(patience=5)
    line.acquire()
    _waiter_on_a_loop_that_dies(line)
    with start_blocking_portal() as portal:
        waiting = portal.start_task_soon(line.acquire_async)
        time.sleep(0.1)
        assert not waiting.done()
        line.release()
        waiting.result(timeout=2)  # its turn came at once
    line.release()


def test_a_batch_gives_the_turn_back_when_its_loop_is_gone(sqlite_engine: Engine,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's thread still writing when its loop ends: the turn goes back once the thread is
    done (before: a done-callback on the dead loop that never ran, so every later writer waited)."""
    writing, finish = threading.Event(), threading.Event()

    def slow(engine: Engine, batch: Sequence[Ballot]) -> list[object]:
        writing.set()
        finish.wait(5)
        return []

    monkeypatch.setattr(casting, "write_together", slow)
    loop = asyncio.new_event_loop()

    async def start() -> tuple[GroupWriter, asyncio.Task[object]]:
        lane = await GroupWriter.open(sqlite_engine)
        task = asyncio.ensure_future(lane.write_batch([]))
        while not writing.is_set():
            await asyncio.sleep(0.01)
        return lane, task

    lane, task = loop.run_until_complete(start())
    task.cancel()  # the loop shutting down
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    loop.close()
    finish.set()
    line = writer_line(sqlite_engine)
    line.patience = 3
    line.acquire()  # before: DatabaseBusy after the patience, the turn gone with the loop
    line.release()
    lane._thread.shutdown(wait=True)


def test_a_batch_that_cannot_get_its_turn_fails_in_bounded_time(sqlite_engine: Engine) -> None:
    """Nothing written, answered as a failed batch (503, try again) within the group writer's own
    patience, however long another writer holds the turn."""
    line = writer_line(sqlite_engine)
    line.acquire()
    try:
        with start_blocking_portal() as portal:
            lane = portal.call(GroupWriter.open, sqlite_engine)
            lane.turn_patience = 0.3
            started = time.monotonic()
            with pytest.raises(DatabaseBusy):
                portal.call(lane.write_batch, [])
            assert time.monotonic() - started < 2
            portal.call(lane.close)
    finally:
        line.release()
    assert issubclass(BatchFailed, DatabaseBusy)


def test_a_caller_holding_the_turn_is_not_queued_behind_itself(engine: Engine, campaign: Campaign,
                                                               candidates: list[int],
                                                               verified: Callable[[str], int],
                                                               settings: Settings) -> None:
    """A request that holds SQLite's writer turn (admitted as a writer) and casts through the lane:
    its vote is written under the turn it holds, not queued for a batch that would wait for it."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's writer turn")
    voter, cid = verified("holder@example.cn"), campaign.id or 0

    async def vote_holding_the_turn(lane: GroupWriter) -> Receipt:
        async with writer_turn(engine):
            return await asyncio.wait_for(lane.cast(cid, candidates[0], voter, "10.0.0.1", settings), 5)

    with start_blocking_portal() as portal:
        lane = portal.call(GroupWriter.open, engine)
        try:
            receipt = portal.call(vote_holding_the_turn, lane)
        finally:
            portal.call(lane.close)
    assert receipt.nomination_id == candidates[0] and lane.batches_written == 0
    with unit_of_work(engine, readonly=True) as session:
        assert [v.id for v in session.exec(select(Vote)).all()] == [receipt.vote_id]
