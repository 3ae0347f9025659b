"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import make_engine
from storage.migrate import current_revision, upgrade
from wiring.tables import metadata


def _diff(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)


def test_sqlite_migrations_match_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, metadata)
    assert current_revision(engine) is not None
    assert _diff(engine) == []
    assert "transition_log" in inspect(engine).get_table_names()
    engine.dispose()


def test_postgresql_migrations_match_models(pg_url):
    engine = make_engine(pg_url)
    assert _diff(engine) == []
    engine.dispose()


def test_sqlite_runs_in_wal_with_immediate_writes(sqlite_engine):
    from sqlalchemy import text

    from storage.db import unit_of_work

    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    # a write unit holds the write lock from its first statement: a second writer waits, never fails
    with unit_of_work(sqlite_engine) as session:
        session.execute(text("SELECT 1"))
        raw = session.connection().connection.dbapi_connection
        assert raw.in_transaction


def test_four_sqlite_writers_never_see_database_is_locked(sqlite_engine):
    """Read-then-write units from four threads: BEGIN IMMEDIATE serialises them instead of failing."""
    import threading

    from sqlalchemy import func, select

    from audit.models import AuditEvent
    from audit.service import record
    from core.actor import Actor
    from storage.db import unit_of_work

    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(25):
                with unit_of_work(sqlite_engine) as session:
                    session.execute(select(func.count()).select_from(AuditEvent)).scalar()
                    record(session, actor=Actor.system(f"w{i}"), action="test", subject=str(j))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with unit_of_work(sqlite_engine, readonly=True) as session:
        assert session.execute(select(func.count()).select_from(AuditEvent)).scalar() == 100


def test_0002_keeps_existing_members_and_goes_back(tmp_path):
    """Members made before 0002 get a zero failure count, no lock and no sessions; 0002 goes down too."""
    from alembic import command
    from sqlalchemy import text

    from storage.migrate import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, metadata, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO user (username, display_name, role, password_hash, active, created_at) "
                          "VALUES ('office', 'office', 'office_admin', 'x', 1, '2021-05-01 02:00:00')"))
    upgrade(engine, metadata, "0002")
    assert current_revision(engine) == "0002"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT failed_logins, lockouts, locked_until FROM user")).one() == (0, 0, None)
    assert "login_session" in inspect(engine).get_table_names()
    cfg = alembic_config(engine, metadata)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert current_revision(engine) == "0001"
    assert "login_session" not in inspect(engine).get_table_names()
    engine.dispose()
