"""The deadline rush through real HTTP: complete drafts prepared in the server's database, then
submitted together in groups, each group fired at an instant of the server's own clock.

Used by ``tests/web/test_rush.py`` (a bounded run in the suite) and ``bench/deadline_rush.py``
(the figures in the README). The client is aiohttp on one event loop; every connection is opened
and warmed before the first group fires, so a group leaves the client within a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median
from zoneinfo import ZoneInfo

import aiohttp
import httpx
from sqlalchemy import create_engine, text

from campaigns import service as campaigns
from core.clock import ManualClock, use_clock
from storage.db import make_engine, unit_of_work
from tests.factories import create_draft

BEIJING = ZoneInfo("Asia/Shanghai")
DEADLINE = datetime(2021, 5, 31, 18, 0, tzinfo=BEIJING)


@dataclass(frozen=True)
class Shot:
    group: str
    token: str
    status: int
    seconds: float
    detail: str


@dataclass(frozen=True)
class Tally:
    group: str
    sent: int
    accepted: int
    late: int
    errors: int
    p50: float
    p99: float
    slowest: float

    def line(self) -> str:
        return (f"{self.group:>22}: {self.sent:5d} sent  {self.accepted:5d} accepted  {self.late:5d} refused as late  "
                f"{self.errors:3d} errors  p50 {self.p50 * 1000:7.1f} ms  p99 {self.p99 * 1000:7.1f} ms  "
                f"max {self.slowest * 1000:7.1f} ms")


def prepare_drafts(database_url: str, count: int) -> list[str]:
    """``count`` complete drafts, written straight into the database before the server starts."""
    engine = make_engine(database_url)
    try:
        with use_clock(ManualClock(datetime(2021, 5, 20, 10, 0, tzinfo=BEIJING))), \
                unit_of_work(engine) as session:
            campaign = campaigns.get_campaign(session)
            spec = campaigns.spec_of(campaign)
            return [create_draft(session, campaign, spec).token for _ in range(count)]
    finally:
        engine.dispose()


def server_offset(url: str, samples: int = 15) -> timedelta:
    """The server's clock minus the wall clock, from the sample with the shortest round trip."""
    best: tuple[float, timedelta] | None = None
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(samples):
            sent = time.time()
            now = datetime.fromisoformat(client.get("/healthz").json()["now"])
            back = time.time()
            offset = now - datetime.fromtimestamp((sent + back) / 2, UTC)
            if best is None or back - sent < best[0]:
                best = (back - sent, offset)
    assert best is not None
    return best[1]


async def _submit(http: aiohttp.ClientSession, url: str, group: str, token: str) -> Shot:
    began = time.perf_counter()
    try:
        async with http.post(f"{url}/api/nominations/{token}/submit") as response:
            body = await response.json(content_type=None)
            detail = str(body.get("state") or body.get("detail_zh") or body.get("detail") or "")
            return Shot(group, token, response.status, time.perf_counter() - began, detail)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return Shot(group, token, 0, time.perf_counter() - began, f"{type(exc).__name__}: {exc}")


async def _group(http: aiohttp.ClientSession, url: str, group: str, tokens: list[str], wall_at: float) -> list[Shot]:
    await asyncio.sleep(max(0.0, wall_at - time.time()))
    return list(await asyncio.gather(*(_submit(http, url, group, t) for t in tokens)))


async def _fire(url: str, groups: list[tuple[str, datetime, list[str]]], offset: timedelta) -> list[Shot]:
    connections = max(len(tokens) for _, _, tokens in groups) + 8
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        # warm the connections now, so that at the instant only requests travel
        await asyncio.gather(*(http.get(f"{url}/healthz") for _ in range(connections)))
        runs = [_group(http, url, name, tokens, (at - offset).timestamp()) for name, at, tokens in groups]
        return [shot for shots in await asyncio.gather(*runs) for shot in shots]


def fire(url: str, groups: list[tuple[str, datetime, list[str]]]) -> list[Shot]:
    """Submit each group's drafts together at its instant of the server's clock."""
    offset = server_offset(url)
    first = min(at for _, at, _ in groups)
    lead = (first - offset - datetime.now(UTC)).total_seconds()
    if lead < 1.0:
        raise RuntimeError(f"only {lead:.2f}s left before the first group: start the server's clock earlier")
    return asyncio.run(_fire(url, groups, offset))


def tally(shots: list[Shot], group: str) -> Tally:
    mine = [s for s in shots if s.group == group]
    times = sorted(s.seconds for s in mine) or [0.0]
    return Tally(
        group=group, sent=len(mine),
        accepted=sum(1 for s in mine if s.status == 200 and s.detail == "submitted"),
        late=sum(1 for s in mine if s.status == 422 and "截止" in s.detail),
        errors=sum(1 for s in mine if not (s.status == 200 and s.detail == "submitted")
                   and not (s.status == 422 and "截止" in s.detail)),
        p50=median(times), p99=times[min(len(times) - 1, int(len(times) * 0.99))], slowest=times[-1],
    )


@contextlib.contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A database of its own for one server (dropped afterwards)."""
    name = f"jingong_rush_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
