"""Triggers that refuse UPDATE and DELETE on audit tables (the trail is never edited), or only
DELETE on tables whose rows may be marked but never removed (votes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event


def append_only_ddl(table: str, dialect: str, *, updates: bool = False) -> list[str]:
    """DDL refusing DELETE and, unless ``updates``, UPDATE on ``table``."""
    if dialect == "sqlite":
        statements = [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows are never deleted'); END",
        ]
        if not updates:
            statements.append(f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
                              f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
        return statements
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION jingong_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql",
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE {'DELETE' if updates else 'UPDATE OR DELETE'} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION jingong_append_only()",
        ]
    return []


def install_append_only(table: Table, connection: Any) -> None:
    updates = table.info.get("append_only") == "no_delete"
    for statement in append_only_ddl(table.name, connection.dialect.name, updates=updates):
        if connection.dialect.name == "postgresql":
            # psycopg formats '%' even without parameters; RAISE needs a literal one
            statement = statement.replace("%", "%%")
        connection.exec_driver_sql(statement)


def make_append_only(table: Table, *, updates: bool = False) -> None:
    """Install the triggers whenever ``metadata.create_all`` creates the table (``upgrade``
    installs them on every table so marked)."""
    table.info["append_only"] = "no_delete" if updates else "rows"

    def _after_create(target: Table, connection: Any, **_: Any) -> None:
        install_append_only(target, connection)

    event.listen(table, "after_create", _after_create)
