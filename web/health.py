"""``GET /healthz``: is the app, its database, the scheduler and the mail sender up?

Answered in the event loop and outside admission (``web/admission.py``), so it stays quick while a
crowd queues. The database is asked in a thread of its own (not the request threads a crowd may
fill), one question at a time. An answer younger than ``PING_KEEP`` is reported as is; one younger
than ``PING_STALE`` is reported while a new question runs in the background (a monitor polling hard
adds no load and never waits); older than that, the request waits for the new answer at most
``PING_PATIENCE`` seconds. A database slow to answer under load is reported ``busy``, and the
instance still healthy while its last answer is recent (``BUSY_GRACE``).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from core import clock
from storage.db import ping

router = APIRouter()

PING_PATIENCE = 0.5
PING_KEEP = 1.0
PING_STALE = 5.0
#: how long a database that did not answer in time counts as up because it answered before
BUSY_GRACE = 30.0
_pinger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jingong-healthz")


class DatabaseCheck:
    """The last answer of the database and the question in flight, per app."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.answered_at = 0.0
        self.answer = "not asked"
        self.ok = False
        self._asking: asyncio.Future[None] | None = None

    def _ask(self) -> None:
        try:
            ping(self.engine)
            self.answer, self.ok = "ok", True
        except Exception as exc:  # noqa: BLE001 - any failure is "down"
            self.answer, self.ok = f"down: {str(exc).splitlines()[0]}", False
        self.answered_at = time.monotonic()

    async def state(self) -> tuple[str, bool]:
        age = time.monotonic() - self.answered_at
        if age > PING_KEEP:
            if self._asking is None or self._asking.done():
                self._asking = asyncio.get_running_loop().run_in_executor(_pinger, self._ask)
            if age <= PING_STALE:
                return self.answer, self.ok
            try:
                await asyncio.wait_for(asyncio.shield(self._asking), PING_PATIENCE)
            except TimeoutError:
                recent = self.ok and time.monotonic() - self.answered_at < BUSY_GRACE
                return f"busy: no answer within {PING_PATIENCE} s", recent
        return self.answer, self.ok


@router.get("/healthz", tags=["service"])
async def healthz(request: Request) -> JSONResponse:
    """Answers 200 when the app, the database and the scheduler are up."""
    state = request.app.state
    check: DatabaseCheck | None = getattr(state, "database_check", None)
    if check is None:
        check = state.database_check = DatabaseCheck(state.engine)
    database, healthy = await check.state()
    body: dict[str, Any] = {"app": "ok", "database": database}
    scheduler = state.scheduler
    if scheduler is None:
        body["scheduler"] = "disabled" if not state.settings.scheduler_enabled else "not running"
    else:
        running = getattr(scheduler, "running", True)
        body["scheduler"] = "running" if running else "stopped"
        healthy = healthy and bool(running)
    sender = state.sender
    body["mail_sender"] = "not running" if sender is None else ("running" if getattr(sender, "running", True)
                                                                  else "stopped")
    body["status"] = "ok" if healthy else "unhealthy"
    body["now"] = clock.now().isoformat()
    return JSONResponse(body, status_code=200 if healthy else 503)
