"""The scheduler for real: APScheduler in this process with an offset clock, and three
`jingong scheduler` processes on one PostgreSQL where the leader is killed mid-campaign."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from audit.models import AuditEvent
from config.campaign import load_campaign
from core.clock import OffsetClock, use_clock
from notifications.models import OutboxMail
from stages import service as stages
from stages.models import ScheduledStep
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_draft

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _done(engine, key: str) -> bool:
    with unit_of_work(engine, readonly=True) as session:
        step = session.exec(select(ScheduledStep).where(ScheduledStep.key == key)).first()
        return step is not None and step.done_at is not None


@pytest.mark.slow
def test_apscheduler_fires_at_the_instant_with_an_injected_clock(sqlite_engine):
    from stages.scheduler import start_scheduler

    spec = load_campaign()
    clock = OffsetClock(beijing(2021, 5, 31, 17, 59, 58), speed=1.0)
    with use_clock(clock):
        with unit_of_work(sqlite_engine) as session:
            campaign = stages.load_campaign(session, spec)
            create_draft(session, campaign, spec)
        # a long safety interval: only the date job can close the stage within the wait
        handle = start_scheduler(sqlite_engine, safety_interval=3600)
        try:
            assert _done(sqlite_engine, "nomination:open")  # caught up at start
            assert not _done(sqlite_engine, "nomination:close")
            _wait_for(lambda: _done(sqlite_engine, "nomination:close"), 15, "the close at 18:00")
            with unit_of_work(sqlite_engine, readonly=True) as session:
                step = session.exec(select(ScheduledStep).where(ScheduledStep.key == "nomination:close")).one()
            assert step.done_at >= beijing(2021, 5, 31, 18, 0)
            assert step.late_seconds < 5
            assert any(j.id.startswith("due:") for j in handle.scheduler.get_jobs())
        finally:
            handle.shutdown()


def _spawn(pg_url: str, tmp_path: Path, i: int) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env |= {
        "DATABASE_URL": pg_url,
        "JINGONG_DATA_DIR": str(tmp_path / f"var{i}"),
        # 1 real second = 1 virtual hour, starting six hours before the nomination deadline (slow starts
        # under a loaded CI must not pass the deadline before the first tick)
        "JINGONG_CLOCK_START": "2021-05-31T12:00:00+08:00",
        "JINGONG_CLOCK_SPEED": "3600",
    }
    log = tmp_path / f"scheduler{i}.log"
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler", "--interval", "0.5"], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, log


@pytest.mark.slow
def test_three_instances_one_leader_killed_every_step_once(pg_engine, pg_url, tmp_path: Path):
    spec = load_campaign()
    with use_clock(OffsetClock(beijing(2021, 5, 1, 10, 0))):
        with unit_of_work(pg_engine) as session:
            campaign = stages.load_campaign(session, spec)
            draft = create_draft(session, campaign, spec)
    procs = [_spawn(pg_url, tmp_path, i) for i in range(3)]
    try:
        _wait_for(lambda: _done(pg_engine, "nomination:close"), 30, "nomination close")
        leaders = [(p, log) for p, log in procs if "scheduler leader" in log.read_text()]
        assert len(leaders) == 1, [log.read_text() for _, log in procs]
        leader, _ = leaders[0]
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        # screening opens at 2021-06-01 00:00, about 12 real seconds after the start
        _wait_for(lambda: _done(pg_engine, "screening:open"), 40, "screening open after the leader died")
        survivors = [(p, log) for p, log in procs if p is not leader]
        # a survivor takes the lead (under load the dead leader may have opened screening itself
        # before the kill, so the takeover is read from the survivors' own words, not the step)
        _wait_for(lambda: any("scheduler leader" in log.read_text() for _, log in survivors), 30,
                  "a survivor to take the lead")
        time.sleep(1.5)  # three of their ticks: a second leader would have said so by now
        assert sum("scheduler leader" in log.read_text() for _, log in survivors) == 1
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    with unit_of_work(pg_engine, readonly=True) as session:
        audit = session.exec(select(AuditEvent)).all()
        opened = Counter(e.subject for e in audit if e.action == "stage_opened")
        closed = Counter(e.subject for e in audit if e.action == "stage_closed")
        reminders = session.exec(select(OutboxMail).where(OutboxMail.nomination_id == draft.id)).all()
        done = session.exec(select(ScheduledStep).where(ScheduledStep.done_at.is_not(None))).all()  # type: ignore[union-attr]
    assert opened == {"publicity": 1, "nomination": 1, "screening": 1}
    assert closed == {"publicity": 1, "nomination": 1}
    assert sorted(m.context.get("days_left") for m in reminders if m.template == "deadline_reminder") == [1, 3, 7]
    assert {s.key for s in done} >= {"publicity:open", "publicity:close", "nomination:open", "nomination:close",
                                     "screening:open", "nomination:reminder:7", "nomination:reminder:3",
                                     "nomination:reminder:1"}
    late = [e for e in audit if e.action == "step_ran_late"]
    assert {e.subject for e in late} >= {"publicity:open", "nomination:open"}  # caught up at the first start
