"""What every command shares: the engine, the campaign, the acting person, the console."""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator

from rich.console import Console
from sqlalchemy import Engine

from config.settings import Settings
from core.actor import Actor, ActorKind
from storage import backup, faults
from storage.db import get_engine

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, never wrapped


def engine() -> Engine:
    return get_engine()


def cli_actor(name: str | None = None) -> Actor:
    """The person at the terminal (``--as`` or the login name)."""
    who = name or os.environ.get("JINGONG_ACTOR") or _login()
    return Actor(ActorKind.USER, f"cli:{who}")


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


@contextlib.contextmanager
def service_process(settings: Settings) -> Iterator[None]:
    """What a long-running process does before it starts: refuse a read-only or full data folder
    with one line, and hold the database so that `jingong restore` refuses while it runs."""
    faults.preflight(settings)
    database = backup.sqlite_path(settings.effective_database_url)
    if database is None:
        yield
        return
    with backup.holding_database(database):
        yield
