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
from voting.batch import BatchingLane, Outcome

THREAD_NAME = "jingong-vote-writer"


class GroupWriter(BatchingLane):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)

    @classmethod
    async def open(cls, engine: Engine) -> GroupWriter:
        if not is_sqlite(engine):
            raise ValueError(f"the group writer serves SQLite, not {engine.dialect.name}")
        return cls(engine)

    async def release(self) -> None:
        self._thread.shutdown(wait=True)

    async def write_batch(self, batch: Sequence[Ballot]) -> list[Outcome]:
        line = writer_line(self.engine)
        await line.acquire_async()
        job = self._loop.run_in_executor(self._thread, casting.write_together, self.engine, batch)
        try:
            return await asyncio.shield(job)
        finally:
            # the turn goes back once the thread is done with the database, even if this task is
            # cancelled meanwhile (the loop shutting down)
            if job.done():
                line.release()
            else:
                job.add_done_callback(lambda _: line.release())
