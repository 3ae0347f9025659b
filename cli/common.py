"""What every command shares: the engine, the campaign, the acting person, the console."""

from __future__ import annotations

import getpass
import os

from rich.console import Console
from sqlalchemy import Engine

from core.actor import Actor, ActorKind
from storage.db import get_engine

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
