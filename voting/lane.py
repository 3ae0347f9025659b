"""The vote lane: on PostgreSQL the web service casts votes from its event loop over a few asyncpg
connections of its own, instead of handing each vote to a worker thread.

Under a crowd the hop to a thread and back is most of what a vote costs the app (measured in
bench/vote_bench.py: a bare ``def`` endpoint answers less than half as many requests as a bare
``async def`` one on this project's machines). The lane runs the very statement of
``voting.casting.PG_VOTE`` (numbered for asyncpg) with the same admission checks, so the rules and
their refusals are those of ``voting.casting.cast_vote``. Rare work that needs the database
outside the statement (refreshing the cached window or candidate list, a refusal that re-reads
them) still goes to a thread, never blocking the loop.

One lane belongs to one event loop: the web app opens it in its lifespan and closes it at shutdown.
"""

from __future__ import annotations

import asyncio
import logging

import anyio
import asyncpg
from sqlalchemy import Engine

from config.settings import Settings
from voting import ballots, casting
from voting.ballots import Ballot, Receipt

log = logging.getLogger("jingong.voting.lane")

#: connections the lane keeps: enough to keep PostgreSQL busy from one app process (2, 4, 8, 12 and
#: 16 measured within noise of each other in bench/vote_bench.py)
CONNECTIONS = 4
VOTE_SQL = casting.numbered(casting.PG_VOTE, Ballot.NAMES)
RETURN_PLACE_SQL = casting.numbered(casting.PG_RETURN_PLACE, ("v", "day"))
#: how the lane's connections appear in pg_stat_activity
APPLICATION_NAME = "jingong-vote-lane"
#: what a lost connection looks like (the database restarted or dropped it): every connection is
#: replaced and the vote retried once. asyncpg reports the server's FATAL as an operator
#: intervention, or a broken protocol state as an internal client error.
LOST = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError, asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError, OSError)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: the lane's statements change no
    session state and run in autocommit. (asyncpg's default reset is a round trip per vote.)"""


class VoteLane:
    def __init__(self, engine: Engine, pool: asyncpg.Pool) -> None:
        self.engine = engine
        self._pool = pool
        # one refresh of the cached window and candidate list at a time: when the cache goes stale
        # under a crowd, the first vote re-reads it and the others wait for that, instead of each
        # taking a thread and a database round trip of its own
        self._refresh = asyncio.Lock()
        self._loop = asyncio.get_running_loop()

    def serves_this_loop(self) -> bool:
        """asyncpg's connections belong to the loop that opened them; a caller on another loop (a
        test client without the app's lifespan) takes the thread path instead."""
        return asyncio.get_running_loop() is self._loop

    @classmethod
    async def open(cls, engine: Engine, connections: int = CONNECTIONS) -> VoteLane:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"the vote lane needs PostgreSQL, not {engine.dialect.name}")
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections, reset=_keep_session,
                                         server_settings={"application_name": APPLICATION_NAME})
        return cls(engine, pool)

    async def close(self) -> None:
        await self._pool.close()

    async def cast(self, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
                   settings: Settings | None = None) -> Receipt:
        """As ``voting.casting.cast_vote``: the receipt, or the same refusal."""
        ballot: Ballot | None = None
        if not ballots.admission_is_cached(self.engine, campaign_id, nomination_id):
            async with self._refresh:
                if not ballots.admission_is_cached(self.engine, campaign_id, nomination_id):
                    ballot = await anyio.to_thread.run_sync(ballots.admit, self.engine, campaign_id, nomination_id,
                                                            voter_id, ip, settings)
        if ballot is None:
            ballot = ballots.admit(self.engine, campaign_id, nomination_id, voter_id, ip, settings)
        if not casting.one_statement(ballot, self.engine):  # several votes a day: the general path
            return await anyio.to_thread.run_sync(casting.write, self.engine, ballot)
        try:
            return await self._write(ballot)
        except LOST as exc:
            # The statement is atomic: either it ran (the retry answers "already voted") or it did
            # not (the retry casts the vote). A lost connection usually means all of them are.
            log.warning("vote lane: connection lost (%s: %s); reconnecting and retrying once",
                        type(exc).__name__, exc)
            await self._pool.expire_connections()
            return await self._write(ballot)

    async def _write(self, ballot: Ballot) -> Receipt:
        params = ballot.params()
        args = [params[name] for name in Ballot.NAMES]
        async with self._pool.acquire() as connection:
            prior, used, vote_id, votes = await connection.fetchrow(VOTE_SQL, *args)
            receipt = ballot.outcome(prior, used, vote_id, votes)
            if receipt is None:
                await connection.execute(RETURN_PLACE_SQL, params["v"], params["day"])
        if receipt is None:
            raise ballot.already()
        return receipt
