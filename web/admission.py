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
waiting for its turn never holds a slot the turn's holder needs. ``POST /api/votes`` passes
through: the group writer takes the turn per batch of votes, and a turn held here for a vote would
be the one its own batch waits for (a vote the route answered hung until the line gave up).

Nobody waits without end: a request that has not got its turn and its slot within
``ADMISSION_READ_WAIT_SECONDS`` (reads, 5 s) or ``ADMISSION_WRITE_WAIT_SECONDS`` (writes, 30 s: a
deadline rush of a thousand submissions is served to its end) is answered 503 with ``Retry-After``
and a Chinese message, and gave up its place in the line. ``/healthz`` never waits here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
#: paths that never queue: the health check must answer while the queue is full
UNQUEUED = frozenset({"/healthz"})
#: seconds a client turned away is asked to wait before trying again
RETRY_AFTER = 5
BUSY_ZH = "访问人数较多，服务器繁忙，请稍后重试"
BUSY_PAGE = ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>请稍后重试</title></head>"
             f"<body><h1>请稍后重试</h1><p>{BUSY_ZH}（约{RETRY_AFTER}秒后）。</p></body></html>").encode()


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
        if scope["type"] != "http" or scope["path"].startswith("/static/") or scope["path"] in UNQUEUED:
            await self.app(scope, receive, send)
            return
        engine: Engine = scope["app"].state.engine
        if scope["path"] == "/api/votes":
            # a vote takes no slot and no writer turn here: it goes through the vote lane's own
            # connections (PostgreSQL) or SQLite's group writer, which takes the turn per batch (a
            # turn held here would be the very one its batch waits for); without a lane it is
            # written in one of web.votes' few threads, whose unit of work queues for the turn
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        per_loop = self._slots.get(loop)
        if per_loop is None:
            size = slots_for(engine)
            per_loop = self._slots[loop] = {True: asyncio.Semaphore(max(2, size // 2)), False: asyncio.Semaphore(size)}
        reads = scope["method"] in READ_METHODS
        settings = scope["app"].state.settings
        patience = settings.admission_read_wait_seconds if reads else settings.admission_write_wait_seconds
        async with contextlib.AsyncExitStack() as held:
            try:
                async with asyncio.timeout(patience):
                    if is_sqlite(engine) and not reads:
                        await held.enter_async_context(writer_turn(engine))
                    await held.enter_async_context(per_loop[reads])
            except TimeoutError:
                await busy(scope, send)
                return
            await self.app(scope, receive, send)


async def busy(scope: Scope, send: Send) -> None:
    """503 with Retry-After: JSON for the API, a short Chinese page for people."""
    if scope["path"].startswith("/api"):
        body = json.dumps({"detail": "the server is busy; try again shortly", "detail_zh": BUSY_ZH},
                          ensure_ascii=False).encode()
        kind = b"application/json"
    else:
        body, kind = BUSY_PAGE, b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", kind), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER).encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
