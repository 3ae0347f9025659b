"""The trail's hash chain: whole after ordinary work, and an edited, a deleted or a reordered row
(written around the append-only triggers, as a database administrator could) is named by the
verifier on both databases; concurrent transitions keep one linear chain; the migration chains
rows written before it; the head is published at a stage close and once a day."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import select

from audit import chain
from audit import service as audit
from audit.models import AuditEvent
from core.actor import Actor
from nominations.states import State
from stages import jobs
from storage.db import make_engine, unit_of_work
from storage.migrate import upgrade
from tests.conftest import beijing
from tests.factories import create_nomination
from wiring import ledger
from wiring.bootstrap import bootstrap
from wiring.tables import metadata
from workflow import service as workflow
from workflow.machine import Event
from workflow.models import TransitionRecord

TRAIL = ("transition_log", "auditevent")


@contextlib.contextmanager
def unguarded(engine: Engine) -> Iterator[None]:
    """The append-only triggers off, as an administrator with full rights could turn them."""
    with engine.begin() as conn:
        for table in TRAIL:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_update")
                conn.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")
            else:
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
    try:
        yield
    finally:
        with engine.begin() as conn:
            for table in TRAIL:
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def _trail(engine: Engine, campaign, spec) -> None:
    with unit_of_work(engine) as session:
        for name in ("甲", "乙", "丙"):
            create_nomination(session, campaign, spec, State.SCREENED, name=f"王{name}")
        audit.record(session, actor=Actor.system("test"), action="window_moved", subject="voting",
                     campaign_id=campaign.id, data={"from": ["a", 1], "至": {"b": 2}})
        audit.record(session, actor=Actor.system("test"), action="server_started")  # no campaign: key 0


def _verify(engine: Engine) -> chain.Checked:
    with unit_of_work(engine, readonly=True) as session:
        return ledger.verify_trail(session)


def test_ordinary_work_leaves_a_whole_chain(engine, campaign, spec):
    _trail(engine, campaign, spec)
    checked = _verify(engine)
    assert checked.breaks == []
    with unit_of_work(engine, readonly=True) as session:
        records = session.exec(select(TransitionRecord).order_by(TransitionRecord.chain_seq)).all()
        events = session.exec(select(AuditEvent).where(AuditEvent.campaign_id == campaign.id)).all()
        head = chain.head(session, campaign.id)
    seqs = sorted([r.chain_seq for r in records] + [e.chain_seq for e in events])
    assert seqs == list(range(1, len(seqs) + 1)) and head.seq == len(seqs)
    assert records[0].prev_hash == chain.GENESIS
    assert {h.campaign_key for h in checked.heads} == {0, campaign.id}
    assert checked.rows == len(seqs) + 1


def _middle(engine: Engine, table: str) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, chain_seq FROM {table} WHERE campaign_id IS NOT NULL "
                                 "ORDER BY chain_seq")).all()
    return rows[len(rows) // 2]


def _next_row_of(engine: Engine, seq: int) -> tuple[str, int]:
    with engine.connect() as conn:
        for table in TRAIL:
            row = conn.execute(text(f"SELECT id FROM {table} WHERE chain_seq = :s AND campaign_id IS NOT NULL"),
                               {"s": seq}).first()
            if row:
                return table, row[0]
    raise AssertionError(f"no row at {seq}")


def test_an_edited_row_is_named(engine, campaign, spec):
    _trail(engine, campaign, spec)
    row_id, seq = _middle(engine, "transition_log")
    with unguarded(engine), engine.begin() as conn:
        conn.execute(text("UPDATE transition_log SET actor = 'user:nobody' WHERE id = :i"), {"i": row_id})
    [broken] = _verify(engine).breaks
    assert (broken.table, broken.row_id, broken.seq) == ("transition_log", row_id, seq)
    assert "edited" in str(broken) and f"transition_log id {row_id}" in str(broken)


def test_an_edited_row_with_its_hash_recomputed_breaks_the_next_link(engine, campaign, spec):
    _trail(engine, campaign, spec)
    row_id, seq = _middle(engine, "transition_log")
    with unit_of_work(engine, readonly=True) as session:
        record = session.get(TransitionRecord, row_id)
        forged = record.model_dump()
    forged["actor"] = "user:nobody"
    digest = chain.row_hash(forged["prev_hash"], "transition_log", seq, forged)
    with unguarded(engine), engine.begin() as conn:
        conn.execute(text("UPDATE transition_log SET actor = 'user:nobody', row_hash = :h WHERE id = :i"),
                     {"h": digest, "i": row_id})
    [broken] = _verify(engine).breaks
    assert (broken.table, broken.row_id) == _next_row_of(engine, seq + 1)
    assert "prev_hash" in broken.problem


def test_a_deleted_row_is_named(engine, campaign, spec):
    _trail(engine, campaign, spec)
    row_id, seq = _middle(engine, "transition_log")
    with unguarded(engine), engine.begin() as conn:
        conn.execute(text("DELETE FROM transition_log WHERE id = :i"), {"i": row_id})
    [broken] = _verify(engine).breaks
    assert (broken.table, broken.row_id) == _next_row_of(engine, seq + 1)
    assert f"expected chain_seq {seq} next" in broken.problem


def test_a_deleted_last_row_is_caught_by_the_head(engine, campaign, spec):
    _trail(engine, campaign, spec)
    with unguarded(engine), engine.begin() as conn:
        conn.execute(text("DELETE FROM auditevent WHERE campaign_id IS NOT NULL AND chain_seq = "
                          "(SELECT max(chain_seq) FROM auditevent WHERE campaign_id IS NOT NULL)"))
    [broken] = _verify(engine).breaks
    assert broken.table == "chain_head" and "removed" in broken.problem


def test_reordered_rows_are_named(engine, campaign, spec):
    _trail(engine, campaign, spec)
    with engine.connect() as conn:
        (a, sa), (b, sb) = conn.execute(text(
            "SELECT id, chain_seq FROM transition_log ORDER BY chain_seq LIMIT 2 OFFSET 3")).all()
    assert sb == sa + 1
    with unguarded(engine), engine.begin() as conn:  # swap their places on the chain
        conn.execute(text("UPDATE transition_log SET chain_seq = -1 WHERE id = :a"), {"a": a})
        conn.execute(text("UPDATE transition_log SET chain_seq = :s WHERE id = :b"), {"s": sa, "b": b})
        conn.execute(text("UPDATE transition_log SET chain_seq = :s WHERE id = :a"), {"s": sb, "a": a})
    [broken] = _verify(engine).breaks
    assert (broken.table, broken.row_id, broken.seq) == ("transition_log", b, sa)


def test_cli_verify_exits_1_naming_the_row(tmp_path: Path):
    from tests.cli.test_cli import run

    assert run(tmp_path, "init").returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'jingong.db'}")
    with unit_of_work(engine) as session:
        for action in ("one", "two"):
            audit.record(session, actor=Actor.system("test"), action=action, campaign_id=1)
    ok = run(tmp_path, "audit", "verify")
    assert ok.returncode == 0 and ok.stdout.startswith("ok:"), ok.stdout + ok.stderr
    with engine.begin() as conn:
        first = conn.execute(text("SELECT id FROM auditevent ORDER BY chain_seq LIMIT 1")).scalar_one()
        conn.exec_driver_sql("DROP TRIGGER auditevent_no_update")
        conn.execute(text("UPDATE auditevent SET reason = 'rewritten' WHERE id = :i"), {"i": first})
    engine.dispose()
    bad = run(tmp_path, "audit", "verify")
    assert bad.returncode == 1
    assert f"CHAIN BROKEN at auditevent id {first}" in bad.stderr and "edited" in bad.stderr


@pytest.mark.postgres
def test_concurrent_transitions_keep_one_chain(pg_engine, spec, clock):
    from stages import service as stages

    with unit_of_work(pg_engine) as session:
        campaign = stages.load_campaign(session, spec)
        ids = [create_nomination(session, campaign, spec, State.SUBMITTED).id for _ in range(16)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def fire(mine: list[int]) -> None:
        try:
            barrier.wait(timeout=30)
            for nomination_id in mine:
                with unit_of_work(pg_engine) as session:
                    workflow.transition(session, nomination_id, Event.PASS_SCREENING, actor=Actor.system("t"))
                    audit.record(session, actor=Actor.system("t"), action="note", campaign_id=campaign.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fire, args=(ids[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    checked = _verify(pg_engine)
    assert checked.breaks == []
    with pg_engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(text(
            "SELECT chain_seq FROM transition_log UNION ALL SELECT chain_seq FROM auditevent "
            "WHERE campaign_id IS NOT NULL ORDER BY 1"))]
    assert seqs == list(range(1, len(seqs) + 1))


@contextlib.contextmanager
def _scratch(kind: str, tmp_path: Path) -> Iterator[Engine]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    from sqlalchemy import create_engine

    from tests.conftest import PG_ADMIN_URL, _pg_available

    if _pg_available():
        pytest.skip("PostgreSQL unreachable")
    name = f"ledger_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_chains_rows_written_before_it(kind: str, tmp_path: Path, clock):
    with _scratch(kind, tmp_path) as engine:
        _migrate_old_rows(engine)


def _migrate_old_rows(engine: Engine) -> None:
    upgrade(engine, metadata, revision="0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO campaign (id, slug, name, award_name, edition, timezone, spec, created_at) "
                          "VALUES (1, 'c', 'c', 'a', 3, 'Asia/Shanghai', '{}', '2021-04-01 00:00:00')"))
        for i, at in enumerate(("2021-05-01 02:00:00.000001", "2021-05-01 01:00:00", "2021-05-02 01:00:00")):
            conn.execute(text("INSERT INTO auditevent (campaign_id, at, actor, action, subject, data) "
                              "VALUES (1, :at, 'system:x', :a, '', '{\"n\": 1}')"), {"at": at, "a": f"act{i}"})
        conn.execute(text("INSERT INTO auditevent (campaign_id, at, actor, action, subject, data) "
                          "VALUES (NULL, '2021-05-01 00:00:00', 'system:x', 'boot', '', '{}')"))
    upgrade(engine, metadata)
    with unit_of_work(engine, readonly=True) as session:
        checked = ledger.verify_trail(session)
        order = [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.campaign_id == 1)
                                                .order_by(AuditEvent.chain_seq))]
    assert checked.breaks == [] and order == ["act0", "act1", "act2"]  # by id: the order written
    assert {(h.campaign_key, h.seq) for h in checked.heads} == {(0, 1), (1, 3)}
    with unit_of_work(engine) as session:  # and new rows go on after them
        audit.record(session, actor=Actor.system("x"), action="after", campaign_id=1)
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET reason = 'x'"))
    assert _verify(engine).breaks == []


def test_the_head_is_published_at_each_stage_close_and_once_a_day(engine, campaign, spec, clock):
    bootstrap()
    jobs.tick(engine)  # the publicity stage closed before 1 May: a head published today
    clock.set(beijing(2021, 6, 1, 9, 0))  # the nomination stage closed at 18:00 on 31 May
    jobs.tick(engine)
    clock.set(beijing(2021, 6, 2, 9, 0))  # a day without a close
    jobs.tick(engine)
    jobs.tick(engine)
    with unit_of_work(engine, readonly=True) as session:
        published = ledger.last_published(session, campaign.id or 0, limit=10)
    subjects = [e.subject for e in reversed(published)]
    assert subjects == ["stage_close:publicity", "stage_close:nomination", "daily:2021-06-02"]
    close = published[1]
    assert close.data["chain_seq"] == close.chain_seq - 1  # the head just before the record itself
    with unit_of_work(engine, readonly=True) as session:
        before = session.exec(select(AuditEvent).where(AuditEvent.chain_seq == close.chain_seq - 1,
                                                       AuditEvent.campaign_id == campaign.id)).first()
        before_t = session.exec(select(TransitionRecord).where(
            TransitionRecord.chain_seq == close.chain_seq - 1)).first()
    assert close.data["head_hash"] == (before or before_t).row_hash
    assert _verify(engine).breaks == []
