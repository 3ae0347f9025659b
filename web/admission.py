"""Admission to the database, decided in the event loop before a request takes a worker thread.

A request holds its unit of work (and, once it has queried, a pooled connection) from its
dependencies to its commit, across several hops between worker threads. Let more requests in at
once than the pool has connections, and those holding a connection wait for a thread while those
holding a thread wait for a connection: a rush ends in pool timeouts. So requests take one of a
bounded number of slots (the pool's connections, less a reserve for the scheduler, the sender and
the vote lane's refreshes) and queue for it in arrival order, in the event loop, holding nothing.

On SQLite a request that may write first waits for the database's one writer
(``storage.db.writer_turn``), again in the event loop and in arrival order; requests that only
read (GET, HEAD, OPTIONS) never wait for it. The turn is taken before the slot, so a writer
waiting for its turn never holds a slot the turn's holder needs.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import MutableMapping
from typing import Any

from sqlalchemy import Engine

from storage.db import is_sqlite, writer_turn
from web.arrival import ASGIApp, Receive, Send
from web.deps import READ_METHODS

#: connections kept back for the process's own threads (scheduler, mail sender, cache refreshes)
RESERVED_CONNECTIONS = 8


def slots_for(engine: Engine) -> int:
    pool = engine.pool
    capacity = int(getattr(pool, "size", lambda: 5)()) + int(getattr(pool, "_max_overflow", 10))
    return max(4, capacity - RESERVED_CONNECTIONS)


class Admission:
    """Pure ASGI; inside ``ArrivalStamp``, so the arrival is stamped before any wait."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # per event loop: a semaphore belongs to the loop it first waited in (tests run several)
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        engine: Engine = scope["app"].state.engine
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(slots_for(engine))
        if is_sqlite(engine) and scope["method"] not in READ_METHODS:
            async with writer_turn(engine), slots:
                await self.app(scope, receive, send)
            return
        async with slots:
            await self.app(scope, receive, send)
