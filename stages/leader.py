"""One leader among several app instances.

PostgreSQL: the leader holds a session-level advisory lock on a dedicated connection; the others
try again at every safety tick and take over within seconds when the leader's connection dies
(a host that vanishes without closing it: within about 15 s, through the server's keepalives).
SQLite: the single instance leads. Correctness never depends on the lock (``tick`` is idempotent
and locks the campaign row); the lock only saves redundant work.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from sqlalchemy import Engine, text

from storage.db import is_sqlite

log = logging.getLogger(__name__)

#: the advisory lock key: "jingong" in ASCII, as a bigint
LOCK_KEY = 0x6A696E676F6E67

#: the server's TCP keepalives on the leader's connection (seconds; the user timeout in ms): a
#: leader whose host vanishes without closing its connection (power, network) loses the lock
#: within about 15 s instead of the kernel's two hours, so another instance takes over
KEEPALIVES = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3,
              "tcp_user_timeout": 10_000}


def _vanishing_noticed(conn: Any) -> None:
    for name, value in KEEPALIVES.items():
        try:
            conn.execute(text(f"SET {name} = {int(value)}"))
        except Exception as exc:  # noqa: BLE001 - an older server: the lock still works, only slower to move
            log.warning("cannot set %s on the leader connection: %s", name, exc)


class Leadership:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._lock = threading.Lock()

    def ensure(self) -> bool:
        """Am I the leader? Try to become it if nobody is."""
        if is_sqlite(self._engine):
            return True
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return True
                except Exception:  # noqa: BLE001 - a dead connection means the lock is gone
                    log.warning("leader connection lost; trying to lead again")
                    self._drop()
            try:
                conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
            except Exception as exc:  # noqa: BLE001 - database down: not the leader this time
                log.warning("cannot reach the database to elect a leader: %s", exc)
                return False
            if got:
                _vanishing_noticed(conn)
                self._conn = conn
                log.info("this instance is the scheduler leader")
                return True
            conn.close()
            return False

    @property
    def is_leader(self) -> bool:
        return is_sqlite(self._engine) or self._conn is not None

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):  # closing drops the lock anyway
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                self._drop()

    def _drop(self) -> None:
        try:
            self._conn.invalidate()
            self._conn.close()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._conn = None
