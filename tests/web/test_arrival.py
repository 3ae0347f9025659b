"""The instant that counts is the request's arrival (web.arrival): what the deadline judges and
what the record shows, however long the request then waits before it is written."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from core import clock as clock_module
from core.clock import ManualClock
from nominations.models import Nomination
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.web.conftest import png_bytes
from tests.web.test_api import new_draft
from web import api
from web.arrival import PREREAD_BYTES, ArrivalStamp
from workflow.models import TransitionRecord


def _slowed(clock: ManualClock, wait: timedelta) -> Any:
    real = api.applicants.submit

    def submit(session: Any, nomination: Nomination) -> Any:
        clock.advance(wait)  # the request waited in queues: it is written this much later
        return real(session, nomination)

    return submit


def test_a_submission_that_arrived_before_the_deadline_is_accepted_and_shows_its_arrival(
        client: TestClient, clock: ManualClock, engine: Any, monkeypatch: Any) -> None:
    token = new_draft(client)["token"]
    client.post(f"/api/nominations/{token}/attachments", data={"kind": "photo"},
                files={"file": ("p.png", png_bytes(), "image/png")})
    arrived = beijing(2021, 5, 31, 17, 59, 59) + timedelta(milliseconds=999)
    clock.set(arrived)
    monkeypatch.setattr(api.applicants, "submit", _slowed(clock, timedelta(seconds=2)))
    response = client.post(f"/api/nominations/{token}/submit")
    assert response.status_code == 200 and response.json()["state"] == "submitted"
    submit = response.json()["history"][-1]
    assert datetime.fromisoformat(submit["received_at"]) == arrived
    assert datetime.fromisoformat(submit["at"]) == arrived + timedelta(seconds=2)
    with unit_of_work(engine, readonly=True) as session:
        nomination = session.exec(select(Nomination).where(Nomination.token == token)).one()
        record = session.exec(select(TransitionRecord).where(TransitionRecord.nomination_id == nomination.id)).one()
        assert nomination.submitted_at == arrived
        assert (record.received_at, record.at) == (arrived, arrived + timedelta(seconds=2))
    assert arrived.strftime("%H:%M:%S") in client.get(f"/status/{token}").text


def test_a_submission_that_arrived_at_the_deadline_is_refused_though_written_at_once(
        client: TestClient, clock: ManualClock) -> None:
    token = new_draft(client)["token"]
    clock.set(beijing(2021, 5, 31, 18, 0, 0))
    assert client.post(f"/api/nominations/{token}/submit").status_code == 422


def _run(scope: dict[str, Any], chunks: list[bytes], clock: ManualClock) -> list[datetime]:
    """Feed ``chunks`` to ``app``, the clock moving one second before each; what the app saw."""
    seen: list[datetime] = []
    pending = list(chunks)

    async def receive() -> MutableMapping[str, Any]:
        clock.advance(timedelta(seconds=1))
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        seen.append(clock_module.received())

    asyncio.run(ArrivalStamp(inner)(scope, receive, send))
    return seen


def test_the_stamp_is_the_last_byte_not_the_first(clock: ManualClock) -> None:
    start = clock.now()
    small = {"type": "http", "method": "POST", "headers": [(b"content-length", b"6")]}
    assert _run(small, [b"abc", b"def"], clock) == [start + timedelta(seconds=2)]
    large = {"type": "http", "method": "POST",
             "headers": [(b"content-length", str(PREREAD_BYTES * 2).encode())]}
    begun = clock.now()
    chunks = [b"x" * PREREAD_BYTES, b"x" * PREREAD_BYTES, b""]
    assert _run(large, chunks, clock) == [begun + timedelta(seconds=3)]
    # outside a request the arrival is simply now
    assert clock_module.received() == clock.now()
