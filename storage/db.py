"""Engines and the unit of work.

One database transaction per act: ``unit_of_work()`` opens it, the caller's services write into
it, and it commits once at the end (or rolls back, dropping queued mail with it). Callbacks
registered with ``after_commit`` run only once the commit has happened.

SQLite (the embedded default) runs in WAL mode with ``BEGIN IMMEDIATE`` for writes: deferred
transactions from several writers fail with "database is locked" even with a busy timeout. SQLite
has one writer at a time, so the writers of a process wait for their turn in arrival order
(``WriterLine``) before they take a connection, instead of racing for SQLite's lock with a busy
timeout and a bounded pool: a crowd of submissions queues, and none of it times out. Read-only
units of work take no turn (WAL readers never wait for the writer) and cannot write
(``PRAGMA query_only``), so a read path that writes by mistake fails loudly instead of losing it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from config.settings import get_settings
from core.errors import DatabaseBusy
from storage import public_version  # noqa: F401 - its commit listeners move the public pages' version

_READONLY = "jingong_readonly"
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
#: SQLite connections a process may hold: more than the web app's worker threads (40), so that a
#: reader never waits for the pool while the writers queue in the line
SQLITE_POOL_SIZE, SQLITE_POOL_OVERFLOW = 8, 56


def normalise_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        kwargs.setdefault("max_overflow", SQLITE_POOL_OVERFLOW)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # as many connections as the web app has worker threads (40): a rush waits for a thread, not
    # for a connection (a pool timeout would be an error)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 30)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_READONLY):
            conn.exec_driver_sql("PRAGMA query_only=1")
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("PRAGMA query_only=0")
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(url: str | None = None) -> Engine:
    url = normalise_url(url or get_settings().effective_database_url)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


class WriterLine:
    """The writers of one SQLite database in this process, served one at a time in the order
    they asked: the turn is handed straight to the longest waiter (a plain lock lets late comers
    overtake). Threads wait with ``acquire``; the web app waits in its event loop with
    ``acquire_async`` (``writer_turn``), so a crowd of requests never ties up the worker threads
    that the request holding the turn needs."""

    def __init__(self, patience: float = 60.0) -> None:
        self.patience = patience
        self._lock = threading.Lock()
        #: how to hand the turn to each waiter: True once handed, False if that waiter is gone
        self._waiting: collections.deque[Callable[[], bool]] = collections.deque()
        self._taken = False

    def _take_or_queue(self, hand_over: Callable[[], bool]) -> bool:
        with self._lock:
            if not self._taken:
                self._taken = True
                return True
            self._waiting.append(hand_over)
            return False

    def _leave(self, hand_over: Callable[[], bool], handed: Callable[[], bool]) -> bool:
        """Stop waiting; True if the turn was handed over meanwhile (it is ours after all)."""
        with self._lock:
            if handed():
                return True
            with contextlib.suppress(ValueError):  # passed over already (its loop looked gone)
                self._waiting.remove(hand_over)
            return False

    def acquire(self) -> None:
        turn = threading.Event()

        def hand_over() -> bool:
            turn.set()
            return True

        if self._take_or_queue(hand_over) or turn.wait(self.patience) or self._leave(hand_over, turn.is_set):
            return
        raise DatabaseBusy(f"waited {self.patience:.0f}s for the database's one writer")

    async def acquire_async(self, patience: float | None = None) -> None:
        """Wait in the event loop for the turn, ``patience`` seconds at most (the line's own by
        default), else ``DatabaseBusy`` (nothing was done: try again)."""
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        handed = threading.Event()
        patience = self.patience if patience is None else patience

        def resolve() -> None:
            if not turn.done():
                turn.set_result(None)

        def hand_over() -> bool:  # called under self._lock, from any thread
            # a loop that no longer runs never runs this waiter again (a test client's lifespan
            # ended without it leaving the line): it is skipped, the turn goes to the next
            if loop.is_closed() or not loop.is_running():
                return False
            try:
                loop.call_soon_threadsafe(resolve)
            except RuntimeError:  # closed meanwhile
                return False
            handed.set()
            return True

        if self._take_or_queue(hand_over):
            return
        try:
            await asyncio.wait_for(asyncio.shield(turn), patience)
        except TimeoutError:
            if not self._leave(hand_over, handed.is_set):
                raise DatabaseBusy(f"waited {patience:g}s for the database's one writer") from None
        except BaseException:  # cancelled (the client went away): give the turn back or the place up
            if self._leave(hand_over, handed.is_set):
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiting:
                if self._waiting.popleft()():  # the turn passes straight to the next in line
                    return
            self._taken = False


#: set while the current request holds its database's writer turn (``writer_turn``): the units of
#: work it opens, in whatever worker thread, do not queue again
_turn_held: contextvars.ContextVar[bool] = contextvars.ContextVar("jingong_writer_turn", default=False)


def holds_writer_turn() -> bool:
    """Whether the current request holds its database's writer turn (``writer_turn``): whatever
    else would take the turn on its behalf (the group writer's batch) would wait for it in vain."""
    return _turn_held.get()


@contextlib.asynccontextmanager
async def writer_turn(engine: Engine) -> AsyncIterator[None]:
    """Hold ``engine``'s writer turn for a whole request (SQLite; elsewhere nothing to wait for)."""
    if not is_sqlite(engine) or _turn_held.get():
        yield
        return
    line = writer_line(engine)
    await line.acquire_async()
    token = _turn_held.set(True)
    try:
        yield
    finally:
        _turn_held.reset(token)
        line.release()


_lines: weakref.WeakKeyDictionary[Engine, WriterLine] = weakref.WeakKeyDictionary()
_lines_lock = threading.Lock()


def writer_line(engine: Engine) -> WriterLine:
    with _lines_lock:
        line = _lines.get(engine)
        if line is None:
            line = _lines[engine] = WriterLine()
        return line


class UnitOfWork(Session):
    """A session that knows what to do after its commit, and whether it may write."""

    def __init__(self, *args: Any, engine: Engine, readonly: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._after_commit: list[Callable[[], None]] = []
        self.engine = engine
        self.readonly = readonly

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


@contextlib.contextmanager
def unit_of_work(engine: Engine | None = None, *, readonly: bool = False) -> Iterator[UnitOfWork]:
    """One transaction: commit on success, roll back on any exception. On SQLite a writing unit
    waits for its turn in the writer line first."""
    engine = engine or get_engine()
    line = writer_line(engine) if is_sqlite(engine) and not readonly and not _turn_held.get() else None
    if line is not None:
        line.acquire()
    try:
        bind = engine.execution_options(**{_READONLY: True}) if readonly else engine
        session = UnitOfWork(bind=bind, expire_on_commit=False, engine=engine, readonly=readonly)
        try:
            yield session
            if not readonly:
                session.commit()
        except BaseException:
            session.rollback()
            session._after_commit.clear()
            raise
        finally:
            # close() ends the transaction (a rollback for the read-only case) without expiring
            # loaded objects, so callers may read them after the block.
            session.close()
    finally:
        if line is not None:
            line.release()
    for callback in session._after_commit:
        callback()


@contextlib.contextmanager
def writable(session: Session) -> Iterator[Session]:
    """Where a small write belongs: the caller's own transaction, or, when that one only reads (a
    GET), a unit of work of its own, committed at once."""
    if not isinstance(session, UnitOfWork) or not session.readonly:
        yield session
        return
    with unit_of_work(session.engine) as own:
        yield own


def ping(engine: Engine) -> None:
    """Raise unless the database answers (the health check's question)."""
    with unit_of_work(engine, readonly=True) as session:
        session.execute(text("select 1"))
