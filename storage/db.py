"""Engines and the unit of work.

One database transaction per act: ``unit_of_work()`` opens it, the caller's services write into
it, and it commits once at the end (or rolls back, dropping queued mail with it). Callbacks
registered with ``after_commit`` run only once the commit has happened.

SQLite (the embedded default) runs in WAL mode with ``BEGIN IMMEDIATE`` for writes: deferred
transactions from several writers fail with "database is locked" even with a busy timeout.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from config.settings import get_settings

_READONLY = "jingong_readonly"
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


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
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
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
            conn.exec_driver_sql("BEGIN")
        else:
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


class UnitOfWork(Session):
    """A session that knows what to do after its commit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


@contextlib.contextmanager
def unit_of_work(engine: Engine | None = None, *, readonly: bool = False) -> Iterator[UnitOfWork]:
    """One transaction: commit on success, roll back on any exception."""
    engine = engine or get_engine()
    bind = engine.execution_options(**{_READONLY: True}) if readonly else engine
    session = UnitOfWork(bind=bind, expire_on_commit=False)
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
    for callback in session._after_commit:
        callback()


def ping(engine: Engine) -> None:
    """Raise unless the database answers (the health check's question)."""
    with unit_of_work(engine, readonly=True) as session:
        session.execute(text("select 1"))
