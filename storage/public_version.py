"""The public version: moved on by every committed write that can change what the public pages show.

The public pages and their JSON twins are served from a cache of the rendered bytes
(``web/pagecache.py``) that is valid while this version stays the same. Writers do not have to
remember to move it: every session's commit looks at the tables its statements wrote
(``INSERT``/``UPDATE``/``DELETE`` seen at the cursor) and moves the version unless all of them are
tables no public page shows (``QUIET_TABLES``: votes and their counters, voter codes, login
sessions, the outbox). An unknown table moves it: a forgotten table costs a re-render, never a
stale page. Read-only units of work write nothing and move nothing.

Where the version lives must be seen by every process that serves or writes the same database:
- SQLite (one host): a small file next to the database (``jingong.db.public-version``), its content
  replaced atomically on every move, read per request (one ``open``/``read``, microseconds); the CLI
  and the scheduler of every process on the host move it too;
- ``REDIS_URL`` set (several instances): a Redis counter (``INCR`` from the writer's thread, ``GET``
  from the event loop, ``storage/redis_get.py``; concurrent readers share one round trip);
- PostgreSQL without Redis: the file in the data folder (valid for the processes of one host).

A move that fails (Redis down) is logged, never raised: the act is committed already. Readers
that cannot learn the version serve uncached, and cached entries live at most a second or so
anyway (``PAGE_CACHE_SECONDS``), which bounds how long a missed move can show.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from config.settings import Settings, get_settings
from storage import redis_get

log = logging.getLogger("jingong.storage.public_version")

#: tables whose rows no public page shows (live vote counts, if shown, lag by the page cache's
#: lifetime instead); anything else written moves the version
QUIET_TABLES = frozenset({
    "vote", "vote_counter", "vote_tally", "voter_day", "vote_flag", "vote_code", "voter_identity",
    "login_session", "outbox_mail", "outbox_control", "outbox_announcement", "scheduled_step",
})
_WRITE = re.compile(r'\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+(?:"?\w+"?\.)?"?(\w+)"?', re.I)
_TOUCHED = "jingong_touched"
_CONNECTIONS = "jingong_connections"


class VersionStore(Protocol):
    def bump(self) -> None: ...

    async def current(self) -> str | None:
        """The version now; None when it cannot be learnt (serve uncached)."""
        ...


class MemoryVersion:
    """One process only (an in-memory database, unit tests)."""

    def __init__(self) -> None:
        self._value = 0

    def bump(self) -> None:
        self._value += 1

    def read(self) -> str:
        return str(self._value)

    async def current(self) -> str | None:
        return self.read()


class FileVersion:
    """A file whose content (a fresh random token per move) is the version: every process of the
    host sees a move at once. Replaced atomically, so a reader sees the old token or the new."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bump(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(uuid.uuid4().hex, encoding="ascii")
        os.replace(tmp, self.path)

    def read(self) -> str | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return "0"  # never moved: every process agrees on that too
        except OSError:
            return None
        try:
            return os.read(fd, 64).decode("ascii", "replace")
        finally:
            os.close(fd)

    async def current(self) -> str | None:
        return self.read()


class RedisVersion:
    """A Redis counter shared by every instance. Readers that arrive while a ``GET`` is in flight
    wait for the next one (sent after they arrived), so a move is seen by the next request, and a
    crowd of readers costs one round trip per batch, not one each."""

    def __init__(self, url: str, key: str) -> None:
        import redis

        self.url, self.key = url, key
        self._sync = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batched] = weakref.WeakKeyDictionary()

    def bump(self) -> None:
        self._sync.incr(self.key)

    async def current(self) -> str | None:
        loop = asyncio.get_running_loop()
        batched = self._loops.get(loop)
        if batched is None:
            batched = self._loops[loop] = _Batched(self.url, self.key)
        return await batched.get()


class _Batched:
    """One ``GET`` at a time from one event loop; whoever arrives during one joins the next."""

    def __init__(self, url: str, key: str) -> None:
        self._get = redis_get.for_url(url, key)
        self._running = False
        self._next: asyncio.Future[str | None] | None = None

    async def get(self) -> str | None:
        waiting = self._next
        if waiting is None:
            waiting = self._next = asyncio.get_running_loop().create_future()
            if not self._running:
                self._start()
        return await asyncio.shield(waiting)

    def _start(self) -> None:
        self._running = True
        waiting, self._next = self._next, None
        assert waiting is not None
        task = asyncio.ensure_future(self._fetch())
        task.add_done_callback(lambda done: self._finished(done, waiting))

    async def _fetch(self) -> str | None:
        raw = await self._get()
        if raw is None:
            return "0"
        return raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)

    def _finished(self, done: asyncio.Future[str | None], waiting: asyncio.Future[str | None]) -> None:
        self._running = False
        if done.cancelled() or done.exception() is not None:
            if not done.cancelled():
                _warn("public version unreadable from Redis (pages are rendered for each request "
                      "until it answers): %s", done.exception())
            waiting.set_result(None)
        else:
            waiting.set_result(done.result())
        if self._next is not None:  # readers arrived during that round trip: one more for them
            self._start()


#: a failing Redis is reported once per this many seconds, not at every request
WARN_EVERY_SECONDS = 30.0
_warned_at: dict[str, float] = {}


def _warn(message: str, exc: BaseException | None) -> None:
    now = time.monotonic()
    if now - _warned_at.get(message, -WARN_EVERY_SECONDS) >= WARN_EVERY_SECONDS:
        _warned_at[message] = now
        log.warning(message, exc)


#: by the database's URL: an engine with other execution options (a read-only unit's) is the same database
_stores: dict[str, VersionStore] = {}
_stores_lock = threading.Lock()


def store_from(engine: Engine, settings: Settings) -> VersionStore:
    """Where ``engine``'s public version lives under ``settings`` (see the module's docstring)."""
    url = make_url(str(engine.url))
    if settings.redis_url:
        return RedisVersion(settings.redis_url, f"{settings.redis_prefix}public-version:{url.database or ''}")
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return MemoryVersion()
        return FileVersion(Path(url.database + ".public-version"))
    return FileVersion(settings.data_dir / f"public-version-{url.database or 'db'}")


def configure(engine: Engine, settings: Settings) -> VersionStore:
    """Fix ``engine``'s store from these settings (the web app's own, which may not be the
    process's environment, as in tests)."""
    with _stores_lock:
        store = _stores[str(engine.url)] = store_from(engine, settings)
        return store


def store_for(engine: Engine) -> VersionStore:
    with _stores_lock:
        store = _stores.get(str(engine.url))
        if store is None:
            store = _stores[str(engine.url)] = store_from(engine, get_settings())
        return store


def bump(engine: Engine) -> None:
    """Move ``engine``'s public version on; a failure is logged (the act is committed already)."""
    try:
        store_for(engine).bump()
    except Exception as exc:  # noqa: BLE001 - Redis down, disk full: the TTL bounds the staleness
        _warn("could not move the public version on (other instances show the act when their "
              "pages expire): %s", exc)


def moves_version(tables: set[str]) -> bool:
    return bool(tables - QUIET_TABLES)


# --- what a commit wrote, seen at the cursor ------------------------------------------------------


@event.listens_for(Engine, "after_cursor_execute")
def _note_write(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
    found = _WRITE.match(statement)
    if found is not None:
        conn.info.setdefault(_TOUCHED, set()).add(found.group(1).lower())


@event.listens_for(Session, "after_begin")
def _remember_connection(session: Session, _transaction: Any, connection: Any) -> None:
    # the connection's own info dict (it outlives the Connection object, which is closed by then)
    session.info.setdefault(_CONNECTIONS, []).append((connection.engine, connection.info))


def _touched(session: Session) -> set[str]:
    tables: set[str] = set()
    for _engine, info in session.info.get(_CONNECTIONS, ()):
        tables |= info.pop(_TOUCHED, set())
    return tables


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    connections = session.info.get(_CONNECTIONS, [])
    if moves_version(_touched(session)):
        bump(connections[0][0])
    session.info.pop(_CONNECTIONS, None)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    _touched(session)
    session.info.pop(_CONNECTIONS, None)
