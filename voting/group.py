"""The group writer: on SQLite the web service's votes are written by one thread of their own, all
the votes waiting in one transaction (group commit, ``voting.batch``).

SQLite has one writer at a time. Before, each vote took the writer turn in the web admission,
then a worker thread, then a transaction and a commit of its own: under a crowd the votes queued for
the turn one by one. Now the event loop queues the admitted ballots, and the writer takes the turn
once per batch (``storage.db.writer_line``, in arrival order with every other writer of the process:
the committee's acts, the scheduler, the mail sender), writes the batch in its thread, commits,
gives the turn back, and only then answers the votes (``casting.write_together``: each ballot in a
savepoint of its own, its refusal exact).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from storage.db import is_sqlite, writer_line
from voting import casting
from voting.ballots import Ballot
from voting.batch import TURN_PATIENCE_SECONDS, BatchingLane, Outcome

THREAD_NAME = "jingong-vote-writer"


class GroupWriter(BatchingLane):
    #: seconds a batch waits for the writer turn at most: then it fails as a whole (nothing written,
    #: each vote answered 503 with Retry-After), well before a client gives up on the answer
    turn_patience = TURN_PATIENCE_SECONDS

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)

    @classmethod
    async def open(cls, engine: Engine) -> GroupWriter:
        if not is_sqlite(engine):
            raise ValueError(f"the group writer serves SQLite, not {engine.dialect.name}")
        return cls(engine)

    async def release(self) -> None:
        # the thread ends after the batch it writes (if any): waited for in a thread, not in the loop
        await asyncio.to_thread(self._thread.shutdown, True)

    async def write_batch(self, batch: Sequence[Ballot]) -> list[Outcome]:
        line = writer_line(self.engine)
        await line.acquire_async(self.turn_patience)
        engine = self.engine

        def write_then_give_back() -> list[Outcome]:
            # The turn goes back from the writer's thread once it is done with the database, not
            # from the event loop: a loop that is gone meanwhile (its lifespan ended, this task
            # cancelled) would never run a callback, and every later writer would wait in vain.
            try:
                return casting.write_together(engine, batch)
            finally:
                line.release()

        try:
            job = self._loop.run_in_executor(self._thread, write_then_give_back)
        except BaseException:  # the thread was not started (shut down): the turn is ours to give back
            line.release()
            raise
        # shielded: a cancelled task leaves the thread to finish the transaction it began
        return await asyncio.shield(job)
