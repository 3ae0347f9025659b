"""Create or migrate the database schema with Alembic (``jingong init``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect

from storage.append_only import install_append_only

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine, metadata: MetaData) -> Config:
    """Alembic's configuration; ``metadata`` holds every table (``wiring.tables.metadata``)."""
    cfg = Config()
    cfg.attributes["metadata"] = metadata
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, metadata: MetaData, revision: str = "head") -> None:
    """Migrate to ``revision``, then install the append-only triggers of the tables that ask."""
    cfg = alembic_config(engine, metadata)
    # DDL runs outside the SQLite "BEGIN IMMEDIATE" hook's business: Alembic begins itself.
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        present = set(inspect(connection).get_table_names())  # an older revision lacks newer tables
        for table in metadata.sorted_tables:
            if table.info.get("append_only") and table.name in present:
                install_append_only(table, connection)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def create_all(engine: Engine, metadata: MetaData) -> None:
    """Schema straight from the models (tests); ``upgrade`` is the production path."""
    metadata.create_all(engine)
