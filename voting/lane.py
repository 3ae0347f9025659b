"""The vote lane: on PostgreSQL the web service casts votes from its event loop over a few asyncpg
connections of its own, instead of handing each vote to a worker thread, and writes the votes that
arrive together in one transaction (group commit, ``voting.batch``).

Under a crowd the hop to a thread and back, and then a commit (a flush of the WAL) per vote, are
most of what a vote costs (measured in bench/vote_bench.py). The lane runs the very statement of
``voting.casting.PG_VOTE`` (numbered for asyncpg) with the same admission checks, once per ballot
inside the batch's transaction, so the rules and their refusals are those of
``voting.casting.cast_vote``: the statement refuses a repeat or a full day by what it returns, not by
an error, so one ballot's refusal never aborts the others. A batch is written in the order of its
candidates, so two instances' batches take the candidates' counter rows in the same order (no
deadlock between them); a deadlock that still happens (one voter on two instances at once) or a
lost connection rolls the batch back, and it is written again once. Rare work that needs the
database outside the statement (refreshing the cached window or candidate list, several votes a
day for one candidate) still goes to a thread, never blocking the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg
from sqlalchemy import Engine

from core.errors import JingongError
from voting import casting
from voting.ballots import Ballot, Receipt
from voting.batch import BatchingLane, Outcome

log = logging.getLogger("jingong.voting.lane")

#: connections the lane keeps: one writes the batches (one batch at a time), one is spare
CONNECTIONS = 2
VOTE_SQL = casting.numbered(casting.PG_VOTE, Ballot.NAMES)
RETURN_PLACE_SQL = casting.numbered(casting.PG_RETURN_PLACE, ("v", "day"))
#: how the lane's connections appear in pg_stat_activity
APPLICATION_NAME = "jingong-vote-lane"
#: what a lost connection looks like (the database restarted or dropped it): every connection is
#: replaced and the batch written again once. asyncpg reports the server's FATAL as an operator
#: intervention, or a broken protocol state as an internal client error.
LOST = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError, asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError, OSError)
#: the batch was rolled back and may simply be written again
RETRY = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: the lane's statements change no
    session state. (asyncpg's default reset is a round trip per batch.)"""


class VoteLane(BatchingLane):
    def __init__(self, engine: Engine, pool: asyncpg.Pool) -> None:
        super().__init__(engine)
        self._pool = pool

    @classmethod
    async def open(cls, engine: Engine, connections: int = CONNECTIONS) -> VoteLane:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"the vote lane needs PostgreSQL, not {engine.dialect.name}")
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections, reset=_keep_session,
                                         server_settings={"application_name": APPLICATION_NAME})
        return cls(engine, pool)

    async def release(self) -> None:
        await self._pool.close()

    def batches(self, ballot: Ballot) -> bool:
        return casting.one_statement(ballot, self.engine)

    async def write_batch(self, batch: Sequence[Ballot]) -> list[Outcome]:
        try:
            return await self._write(batch)
        except LOST as exc:
            # Nothing of the batch was committed, or all of it was (then the second writing answers
            # "already voted" for each). A lost connection usually means all of them are.
            log.warning("vote lane: connection lost (%s: %s); reconnecting and writing the batch again",
                        type(exc).__name__, exc)
            await self._pool.expire_connections()
        except RETRY as exc:
            log.warning("vote lane: batch rolled back (%s); writing it again", type(exc).__name__)
        return await self._write(batch)

    async def _write(self, batch: Sequence[Ballot]) -> list[Outcome]:
        async with self._pool.acquire() as connection:
            if len(batch) == 1:  # a lone vote: its statement commits by itself
                return [await _write_one(connection, batch[0])]
            order = sorted(range(len(batch)), key=lambda i: batch[i].nomination_id)
            outcomes: list[Outcome | None] = [None] * len(batch)
            async with connection.transaction():
                for i in order:
                    outcomes[i] = await _write_one(connection, batch[i])
        return [o for o in outcomes if o is not None]


async def _write_one(connection: asyncpg.Connection, ballot: Ballot) -> Outcome:
    params = ballot.params()
    prior, used, vote_id, votes = await connection.fetchrow(VOTE_SQL, *[params[name] for name in Ballot.NAMES])
    try:
        receipt: Receipt | None = ballot.outcome(prior, used, vote_id, votes)
    except JingongError as refusal:
        return refusal
    if receipt is None:  # a racing duplicate took a day's place and wrote no row
        await connection.execute(RETURN_PLACE_SQL, params["v"], params["day"])
        return ballot.already()
    return receipt
