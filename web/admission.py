"""Admission to the database, decided in the event loop before a request takes a worker thread.

A request holds its unit of work (and, once it has queried, a pooled connection) from its
dependencies to its commit, across several hops between worker threads. Let more requests in at
once than the pool has connections, and those holding a connection wait for a thread while those
holding a thread wait for a connection: a rush ends in pool timeouts. So requests take one of a
bounded number of slots (a few per core, within the pool's connections less a reserve for the
scheduler, the sender and the vote lane's refreshes) and queue for it in arrival order, in the
event loop, holding nothing. Reads and writes have slots of their own, so a status page is
answered while a rush of submissions queues.

On SQLite a request that may write first waits for the database's one writer
(``storage.db.writer_turn``), again in the event loop and in arrival order; requests that only
read (GET, HEAD, OPTIONS) never wait for it. The turn is taken before the slot, so a writer
waiting for its turn never holds a slot the turn's holder needs.
"""

from __future__ import annotations

import asyncio
import os
import weakref

from sqlalchemy import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from storage.db import is_sqlite, writer_turn
from web.deps import READ_METHODS

#: connections kept back for the process's own threads (scheduler, mail sender, cache refreshes)
RESERVED_CONNECTIONS = 8
#: requests served at once per core: more only adds threads fighting the event loop for the
#: interpreter lock, and the loop is where arrivals are stamped (measured: with 32 at once on
#: 2 cores, a rush of 1,000 on PostgreSQL saw some arrivals stamped over a second late)
SLOTS_PER_CORE = 4


def slots_for(engine: Engine) -> int:
    pool = engine.pool
    capacity = int(getattr(pool, "size", lambda: 5)()) + int(getattr(pool, "_max_overflow", 10))
    return max(4, min(capacity - RESERVED_CONNECTIONS, SLOTS_PER_CORE * (os.cpu_count() or 1)))


class Admission:
    """Pure ASGI; inside ``ArrivalStamp``, so the arrival is stamped before any wait."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # per event loop: a semaphore belongs to the loop it first waited in (tests run several)
        # reads and writes have slots of their own: a status page is answered during a rush
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        engine: Engine = scope["app"].state.engine
        if scope["path"] == "/api/votes" and not is_sqlite(engine):
            # on PostgreSQL a vote goes through the vote lane's own connections, in the event loop
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        per_loop = self._slots.get(loop)
        if per_loop is None:
            size = slots_for(engine)
            per_loop = self._slots[loop] = {True: asyncio.Semaphore(max(2, size // 2)), False: asyncio.Semaphore(size)}
        reads = scope["method"] in READ_METHODS
        slots = per_loop[reads]
        if is_sqlite(engine) and not reads:
            async with writer_turn(engine), slots:
                await self.app(scope, receive, send)
            return
        async with slots:
            await self.app(scope, receive, send)
