"""APScheduler 3.x drives the calendar: it only calls ``stages.jobs.tick()`` at each due instant
plus a safety-net interval. The due instants live in the database (``scheduled_step``), so a
job missed while the service was down is caught up at the next start, in calendar order.
APScheduler's own job store is in memory and per process: 3.x forbids sharing one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlmodel import select

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.settings import get_settings
from core import clock
from notifications import announce
from stages import jobs
from stages import service as stages
from stages.leader import Leadership
from storage.db import unit_of_work

log = logging.getLogger(__name__)

#: how many upcoming instants get their own APScheduler job (the safety net covers the rest)
HORIZON = 50


def wall_time_of(instant: datetime) -> datetime | None:
    """When, on the real clock, the injected clock will show ``instant`` (None if it never will
    by itself, e.g. a manual clock)."""
    current = clock.get_clock()
    if isinstance(current, clock.SystemClock):
        return instant
    if isinstance(current, clock.OffsetClock):
        real_now = clock.wall_now()  # APScheduler runs on wall time
        speed = getattr(current, "_speed", 1.0) or 1.0
        return real_now + (instant - current.now()) / speed
    return None


@dataclass
class SchedulerHandle:
    engine: Engine
    scheduler: BackgroundScheduler
    leadership: Leadership
    _lock: threading.Lock
    _stopping: bool = False

    def run_tick(self) -> list[jobs.StepResult]:
        """The one job: if leading, apply what is due, release due mail, and re-arm the timers."""
        if not self._lock.acquire(blocking=False):
            return []
        try:
            if self._stopping or not self.leadership.ensure():
                return []
            results = jobs.tick(self.engine)
            for r in results:
                log.info("%s %s: %s", r.campaign, r.key, r.summary)
            with unit_of_work(self.engine) as session:
                announce.release_due(session)
            self.rearm()
            return results
        except Exception:
            log.exception("scheduler tick failed; the safety net will try again")
            return []
        finally:
            self._lock.release()

    def rearm(self) -> None:
        """One date job per upcoming instant, rebuilt from the database."""
        if self._stopping:
            return
        for job in self.scheduler.get_jobs():
            if job.id.startswith("due:"):
                job.remove()
        with unit_of_work(self.engine, readonly=True) as session:
            campaigns = list(session.exec(select(Campaign)))
            due = [(c, s) for c in campaigns for s in stages.pending_steps(session, c.id or 0, HORIZON)]
        for campaign, step in due:
            at = wall_time_of(step.retry_at or step.due_at)
            if at is None or at <= clock.wall_now():
                continue
            self.scheduler.add_job(
                self.run_tick, DateTrigger(run_date=at, timezone=campaign.timezone),
                id=f"due:{campaign.id}:{step.key}", replace_existing=True,
                misfire_grace_time=None, coalesce=True,
            )

    def upcoming(self) -> list[dict[str, Any]]:
        with unit_of_work(self.engine, readonly=True) as session:
            out = []
            for campaign in session.exec(select(Campaign)):
                for step in stages.upcoming(session, campaign.id or 0):
                    out.append({"campaign": campaign.slug, "step": step.key, "at": step.due_local.isoformat(),
                                "text": str(step)})
            return out

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop firing, let a running tick finish (APScheduler's own ``wait=True`` would deadlock
        with a tick that is re-arming its timers), then give up the leadership."""
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._lock.acquire(timeout=-1 if timeout is None else timeout):
            self._lock.release()
        self.leadership.release()


def start_scheduler(engine: Engine, *, safety_interval: float | None = None) -> SchedulerHandle:
    """Start the scheduler in a background thread: catch up at once, then run at every due
    instant and every ``safety_interval`` seconds."""
    interval = safety_interval or get_settings().scheduler_safety_interval_seconds
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"misfire_grace_time": None, "coalesce": True,
                                                                   "max_instances": 1})
    handle = SchedulerHandle(engine, scheduler, Leadership(engine), threading.Lock())
    with unit_of_work(engine) as session:
        for campaign in session.exec(select(Campaign)):
            stages.rebuild_steps(session, campaign)
    handle.run_tick()  # catch up before anything else runs, in calendar order
    scheduler.add_job(handle.run_tick, IntervalTrigger(seconds=interval), id="safety-net")
    # a window moved in this process: run the tick now (a stage closed by hand is due at once)
    campaigns.on_calendar_changed(lambda: scheduler.add_job(handle.run_tick, id="kick", replace_existing=True))
    scheduler.start()
    return handle
