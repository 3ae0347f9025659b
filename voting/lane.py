"""The vote lane: on PostgreSQL the web service casts votes from its event loop over asyncpg
connections of its own, instead of handing each vote to a worker thread, and writes the votes that
arrive together with one statement and one commit (group commit, ``voting.batch``).

Under a crowd the hop to a thread and back, a round trip and a commit (a flush of the WAL) per vote
were most of what a vote cost (measured in bench/vote_bench.py). A lone vote is the very statement
of ``voting.casting.PG_VOTE`` (numbered for asyncpg); a batch is cut in rounds where each voter
appears once (``rounds``), and each round is ``voting.casting.PG_BATCH_VOTE``, the same statement
over arrays: every ballot gets the answer ``PG_VOTE`` would give it, judged in the batch's order,
with the same admission checks as ``voting.casting.cast_vote``. A refusal is what the statement
returns, not an error, so one ballot's refusal never spoils the others. Rows are locked in the
order of voters and candidates, so two instances' batches do not deadlock each other; a deadlock
that still happens, or a lost connection, means nothing of the batch was committed (or, for a
connection lost during the commit, all of it: then the second writing answers "already voted"),
and the batch is written once more. Rare work that needs the database outside the statement
(refreshing the cached window or candidate list, several votes a day for one candidate) still
goes to a thread, never blocking the loop.

A per-vote column (a receipt code, say) goes in ``Ballot.params``, ``PG_VOTE``,
``PG_BATCH_COLUMNS``/``PG_BATCH_VOTE`` and the SQLite writer's ``SQLITE_ADD_VOTE``.
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
BATCH_SQL = casting.numbered(casting.PG_BATCH_VOTE, (*casting.PG_BATCH_COLUMNS, "cap"))
#: asyncpg prepares the batch statement once per connection, and PostgreSQL then settles on a
#: generic plan after five runs: made while ``vote`` was nearly empty, it joins the batch to a
#: sequential scan of ``vote`` for ever after, and every batch reads the whole table (a bench's
#: third round ran at half the first's rate). Planned for each batch's own arrays instead, the
#: repeat check is an index probe of the unique key at any size.
PLAN_CACHE_MODE = "force_custom_plan"
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
                                         server_settings={"application_name": APPLICATION_NAME,
                                                          "plan_cache_mode": PLAN_CACHE_MODE})
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
            parts = rounds(batch)
            if len(parts) == 1:  # the usual crowd: every voter once, one statement, one commit
                return _in_order(len(batch), await _write_round(connection, batch, parts[0]))
            async with connection.transaction():  # a voter twice: one statement per round, one commit
                done: dict[int, Outcome] = {}
                for part in parts:
                    done |= await _write_round(connection, batch, part)
            return _in_order(len(batch), done)


def rounds(batch: Sequence[Ballot]) -> list[list[int]]:
    """The batch's positions in rounds where no voter appears twice and every ballot has the same
    cap: a voter's second ballot goes in the round after the first (they are judged in order)."""
    seen: dict[tuple[int, str], int] = {}
    parts: dict[tuple[int, int], list[int]] = {}
    for i, ballot in enumerate(batch):
        key = (ballot.voter_id, ballot.day)
        occurrence = seen[key] = seen.get(key, -1) + 1
        parts.setdefault((occurrence, ballot.window.candidates_per_day), []).append(i)
    return [parts[k] for k in sorted(parts)]


def _in_order(size: int, done: dict[int, Outcome]) -> list[Outcome]:
    return [done[i] for i in range(size)]


async def _write_round(connection: asyncpg.Connection, batch: Sequence[Ballot], part: list[int]) -> dict[int, Outcome]:
    """One round as ``casting.PG_BATCH_VOTE``: every ballot's answer, as the one-ballot statement's."""
    ballots = [batch[i] for i in part]
    columns: list[list[object]] = [[] for _ in casting.PG_BATCH_COLUMNS]
    for ballot in ballots:
        params = ballot.params()
        for column, name in zip(columns, casting.PG_BATCH_COLUMNS, strict=True):
            column.append(params[name])
    rows = await connection.fetch(BATCH_SQL, *columns, ballots[0].window.candidates_per_day)
    found = {int(row[0]): row for row in rows}  # by voter: each once in a round
    done: dict[int, Outcome] = {}
    counted: dict[int, int] = {}  # per candidate: votes of this round after the one being answered
    for i, ballot in reversed(list(zip(part, ballots, strict=True))):
        _, prior, used, vote_id, votes = found[ballot.voter_id]
        if vote_id is not None and votes is not None:  # the count as it stood after this ballot
            later = counted.get(ballot.nomination_id, 0)
            counted[ballot.nomination_id] = later + 1
            votes -= later
        try:
            receipt = ballot.outcome(prior, used, vote_id, votes)
        except JingongError as refusal:
            done[i] = refusal
            continue
        if receipt is None:  # a racing duplicate took a day's place and wrote no row
            await connection.execute(RETURN_PLACE_SQL, ballot.voter_id, ballot.day)
            done[i] = ballot.already()
        else:
            done[i] = receipt
    return done


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
