"""Alembic environment: runs on the connection handed over by ``storage.migrate``."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from storage.db import normalise_url
from storage.types import StrEnumType, UTCDateTime

config = context.config
#: every table, handed over by ``storage.migrate.alembic_config`` (storage knows no domain table)
metadata = config.attributes["metadata"]


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(normalise_url(config.get_main_option("sqlalchemy.url") or ""))
    with engine.begin() as conn:
        _run(conn)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    # Our column types are plain SQL types underneath; migrations should not import them.
    if type_ == "type" and isinstance(obj, StrEnumType):
        return f"sa.String(length={obj.length})"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
