"""Group commit for the web service's votes: ballots queue in the event loop and one writer takes
all that are waiting, writes them in one transaction, commits, and only then answers each of them.

Under a crowd most of a vote's cost is the commit (a flush to disk, on SQLite also the one writer's
turn) and the hops around it; a batch pays them once for every vote that arrived meanwhile. Each
ballot keeps its own answer: a refusal (already voted, the day's places used up) is decided per
ballot, in the batch's order, so two ballots of one voter in the same batch are judged as if they had
come one after the other. A vote is acknowledged only after the commit that wrote it; when a batch
fails (the database refused the transaction or the commit), every vote of that batch is answered
``BatchFailed`` (503, try again) and none of them was written.

``BatchingLane`` is the queue and the admission in front of it; ``voting.lane.VoteLane``
(PostgreSQL, asyncpg from the event loop) and ``voting.group.GroupWriter`` (SQLite, a thread of
its own holding the writer turn per batch) write the batches. A lane belongs to the event loop that
opened it; the web app opens one in its lifespan and closes it at shutdown (which drains the queue).

No vote waits without end: the group writer waits for SQLite's writer turn ``TURN_PATIENCE_SECONDS``
at most (then the batch fails as a whole: 503, Retry-After, nothing written), and a vote waits for
its batch's answer ``ANSWER_PATIENCE_SECONDS`` at most (503 ``VoteUnconfirmed``: the vote may
still be written, never acknowledged without being written). A caller that holds the writer turn
itself is not queued behind it: its vote is written in a thread under that turn.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Sequence

import anyio
from sqlalchemy import Engine

from config.settings import Settings
from core.errors import DatabaseBusy, JingongError
from storage.db import holds_writer_turn
from voting import ballots, casting
from voting.ballots import Ballot, Receipt

log = logging.getLogger("jingong.voting.batch")

#: ballots written in one transaction at most (a crowd's queue is written in several)
MAX_BATCH = 256
#: seconds a batch waits for SQLite's writer turn at most (the group writer); then the batch fails
#: as a whole, nothing written, each vote answered 503 (a committee act holds the turn for well
#: under a second; a fuzzer or a phone gives up on an answer after about ten)
TURN_PATIENCE_SECONDS = 6.0
#: seconds a vote waits for its batch's answer at most: beyond the turn's patience and the write,
#: only a writer stuck in the database (another process holding SQLite's lock) gets here
ANSWER_PATIENCE_SECONDS = 20.0

Outcome = Receipt | JingongError


class BatchFailed(DatabaseBusy):
    """The transaction that carried this vote failed: nothing of it was written."""

    message_zh = "系统繁忙，本次投票未能写入、未计票，请稍后重试"

    def __init__(self) -> None:
        super().__init__("the database could not write this vote; it was not counted, try again shortly",
                         message_zh=self.message_zh)


class VoteUnconfirmed(DatabaseBusy):
    """The vote's batch did not answer in time: the vote may still be written; the voter is told
    to check before voting again (a second vote for the same candidate is refused, not counted)."""

    message_zh = "系统繁忙，本次投票未能及时确认，请稍后刷新查看；如再次投票提示已投过，说明此前的投票已计入"

    def __init__(self) -> None:
        super().__init__("the vote was not confirmed in time; check shortly before voting again",
                         message_zh=self.message_zh)


class BatchingLane:
    """The queue, its one writer task, and the admission of each vote. Subclasses write a batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._loop = asyncio.get_running_loop()
        # one refresh of the cached window and candidate list at a time: when the cache goes stale
        # under a crowd, the first vote re-reads it and the others wait for that, instead of each
        # taking a thread and a database round trip of its own
        self._refresh = asyncio.Lock()
        self._queue: list[tuple[Ballot, asyncio.Future[Receipt]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches_written = 0  # for tests and the bench: how many transactions carried the votes

    def serves_this_loop(self) -> bool:
        """A lane answers only on the loop that opened it (asyncpg's connections and the futures
        belong to it); a caller on another loop (a test client without the app's lifespan) takes
        the thread path instead."""
        return asyncio.get_running_loop() is self._loop

    def batches(self, ballot: Ballot) -> bool:
        """Whether the ballot goes through the batch (else the general path, in a thread)."""
        return True

    async def write_batch(self, batch: Sequence[Ballot]) -> list[Outcome]:
        """One outcome per ballot, in order, all committed together; raises if nothing was."""
        raise NotImplementedError

    async def release(self) -> None:
        """Give back what the writer holds (connections, its thread)."""

    async def cast(self, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
                   settings: Settings | None = None) -> Receipt:
        """As ``voting.casting.cast_vote``: the receipt once the vote is committed, or the same refusal."""
        ballot = await self._admit(campaign_id, nomination_id, voter_id, ip, settings)
        # the general path, in a thread: several votes a day for one candidate; or a caller that
        # holds SQLite's writer turn itself (a request admitted as a writer), for whom a batch
        # would wait for that very turn: its unit of work writes under the turn it holds
        if not self.batches(ballot) or holds_writer_turn():
            return await anyio.to_thread.run_sync(casting.write, self.engine, ballot)
        future: asyncio.Future[Receipt] = self._loop.create_future()
        future.add_done_callback(_retrieved)
        self._queue.append((ballot, future))
        if self._writer is None:
            # a context of its own: the writer serves every request, it holds nothing of this one
            self._writer = self._loop.create_task(self._write_queue(), context=contextvars.Context())
        # shielded: a client that goes away does not pull its ballot out of a batch being written;
        # bounded: the batch's answer is awaited ANSWER_PATIENCE_SECONDS at most (a 503)
        try:
            async with asyncio.timeout(ANSWER_PATIENCE_SECONDS):  # cheaper than wait_for: no task of its own
                return await asyncio.shield(future)
        except TimeoutError:
            log.error("a vote's batch did not answer within %gs", ANSWER_PATIENCE_SECONDS)
            raise VoteUnconfirmed() from None

    async def close(self) -> None:
        """Write what is queued, then release the writer."""
        if self._writer is not None:
            await self._writer
        await self.release()

    async def _admit(self, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
                     settings: Settings | None) -> Ballot:
        if not ballots.admission_is_cached(self.engine, campaign_id, nomination_id):
            async with self._refresh:
                if not ballots.admission_is_cached(self.engine, campaign_id, nomination_id):
                    return await anyio.to_thread.run_sync(ballots.admit, self.engine, campaign_id, nomination_id,
                                                          voter_id, ip, settings)
        # the shared limits (Redis, with several instances) are asked without blocking the loop
        return await ballots.admit_async(self.engine, campaign_id, nomination_id, voter_id, ip, settings)

    async def _write_queue(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                await self._settle(batch)
        finally:
            self._writer = None

    async def _settle(self, batch: list[tuple[Ballot, asyncio.Future[Receipt]]]) -> None:
        try:
            outcomes = await self.write_batch([ballot for ballot, _ in batch])
        except Exception:  # noqa: BLE001 - whatever failed, every waiter of the batch hears it
            log.exception("a batch of %d vote(s) failed; each is answered 503 and none was written", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(BatchFailed())
            return
        self.batches_written += 1
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Receipt):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)


def _retrieved(future: asyncio.Future[Receipt]) -> None:
    """Mark a refusal as seen even when its client went away (no "never retrieved" noise)."""
    if not future.cancelled():
        future.exception()
