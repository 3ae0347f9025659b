"""Rushes at a clock edge through real HTTP: what the crowd needs is prepared in the server's
database (complete drafts, voters, formal candidates), then requests are sent together in
groups, each group fired at an instant of the server's own clock.

Used by ``tests/web/test_rush.py`` (a bounded run in the suite) and ``bench/deadline_rush.py``
(the figures in the README). The client is aiohttp on one event loop; every connection is opened
and warmed before the first group fires, so a group leaves the client within a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import httpx
from sqlalchemy import create_engine, text
from sqlmodel import Session

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec
from config.settings import Settings
from core import clock
from core.clock import ManualClock, use_clock
from nominations.states import State
from storage.db import make_engine, unit_of_work
from tests.factories import create_draft, create_nomination, with_photo
from voting.identities import issue_token
from voting.models import IdentityKind, VoterIdentity

BEIJING = ZoneInfo("Asia/Shanghai")
DEADLINE = datetime(2021, 5, 31, 18, 0, tzinfo=BEIJING)
VOTING_CLOSES = datetime(2021, 7, 11, 0, 0, tzinfo=BEIJING)
NOTICE_CLOSES = datetime(2021, 9, 1, 0, 0, tzinfo=BEIJING)


@dataclass(frozen=True)
class Req:
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


def submissions(tokens: list[str]) -> list[Req]:
    return [Req(f"/api/nominations/{token}/submit") for token in tokens]


@dataclass(frozen=True)
class Shot:
    group: str
    path: str
    status: int
    seconds: float
    detail: str
    #: how long after its group's instant the request left the load generator (a loaded machine
    #: can make the generator itself late: then a "late" verdict is about the generator, not the server)
    sent_late: float = 0.0


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


@contextlib.contextmanager
def _preparing(database_url: str, at: datetime) -> Iterator[tuple[Session, Campaign, CampaignSpec]]:
    """The server's database, before it starts, with the clock at ``at``: one transaction."""
    engine = make_engine(database_url)
    try:
        with use_clock(ManualClock(at)), unit_of_work(engine) as session:
            campaign = campaigns.get_campaign(session)
            yield session, campaign, campaigns.spec_of(campaign)
    finally:
        engine.dispose()


def prepare_drafts(database_url: str, count: int) -> list[str]:
    """``count`` complete drafts, written straight into the database before the server starts."""
    with _preparing(database_url, datetime(2021, 5, 20, 10, 0, tzinfo=BEIJING)) as (session, campaign, spec):
        return [with_photo(session, create_draft(session, campaign, spec)).token for _ in range(count)]


def prepare_voting(database_url: str, data_dir: Path, voters: int, candidates: int = 5) -> list[Req]:
    """Shortlisted candidates and verified voters; one vote request per voter (a candidate each,
    in turn: one vote per voter per candidate per day)."""
    settings = Settings.model_validate({"JINGONG_DATA_DIR": str(data_dir)})  # the server's secret key
    with _preparing(database_url, datetime(2021, 5, 20, 10, 0, tzinfo=BEIJING)) as (session, campaign, spec):
        ids = [create_nomination(session, campaign, spec, State.SHORTLISTED).id or 0 for _ in range(candidates)]
        identities = [VoterIdentity(campaign_id=campaign.id or 0, kind=IdentityKind.EMAIL,
                                    identity_hash=f"rush-voter-{i}", created_at=clock.now(), created_minute=i)
                      for i in range(voters)]
        session.add_all(identities)
        session.flush()
        return [Req("/api/votes", {"nomination_id": ids[i % candidates]},
                    {"Authorization": f"Bearer {issue_token(campaign.id or 0, v.id or 0, settings)}"})
                for i, v in enumerate(identities)]


def prepare_objections(database_url: str, objections: int, candidates: int = 3) -> list[Req]:
    """Formal candidates on the public notice; objections spread over them (several objections
    to one candidate arrive together, as they would)."""
    with _preparing(database_url, datetime(2021, 7, 25, 10, 0, tzinfo=BEIJING)) as (session, campaign, spec):
        ids = [create_nomination(session, campaign, spec, State.VETTED).id or 0 for _ in range(candidates)]
        return [Req("/api/objections", {"nomination_id": ids[i % candidates], "name": f"实名{i}",
                                        "contact": f"1391234{i:04d}", "facts": "事迹材料与实际不符"})
                for i in range(objections)]


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


async def _post(http: aiohttp.ClientSession, url: str, group: str, req: Req) -> Shot:
    began = time.perf_counter()
    try:
        async with http.post(f"{url}{req.path}", json=req.json, headers=req.headers) as response:
            body = await response.json(content_type=None)
            detail = str(body.get("state") or body.get("detail_zh") or body.get("detail") or "")
            return Shot(group, req.path, response.status, time.perf_counter() - began, detail)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return Shot(group, req.path, 0, time.perf_counter() - began, f"{type(exc).__name__}: {exc}")


async def _group(http: aiohttp.ClientSession, url: str, group: str, reqs: list[Req], wall_at: float) -> list[Shot]:
    await asyncio.sleep(max(0.0, wall_at - time.time()))
    sent_late = time.time() - wall_at
    shots = await asyncio.gather(*(_post(http, url, group, r) for r in reqs))
    return [dataclasses.replace(shot, sent_late=sent_late) for shot in shots]


Groups = list[tuple[str, datetime, list[Req]]]


async def _fire(url: str, groups: Groups, offset: timedelta) -> list[Shot]:
    connections = max(len(reqs) for _, _, reqs in groups) + 8
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        # warm the connections now, so that at the instant only requests travel
        await asyncio.gather(*(http.get(f"{url}/healthz") for _ in range(connections)))
        runs = [_group(http, url, name, reqs, (at - offset).timestamp()) for name, at, reqs in groups]
        return [shot for shots in await asyncio.gather(*runs) for shot in shots]


def fire(url: str, groups: Groups) -> list[Shot]:
    """Send each group's requests together at its instant of the server's clock."""
    offset = server_offset(url)
    first = min(at for _, at, _ in groups)
    lead = (first - offset - datetime.now(UTC)).total_seconds()
    if lead < 1.0:
        raise RuntimeError(f"only {lead:.2f}s left before the first group: start the server's clock earlier")
    return asyncio.run(_fire(url, groups, offset))


def submitted(shot: Shot) -> bool:
    return shot.status == 200 and shot.detail == "submitted"


def created(shot: Shot) -> bool:
    return shot.status == 201


def refused_late(shot: Shot) -> bool:
    """422 with the Chinese refusal of a closed window (deadline passed, not in the notice period)."""
    return shot.status == 422 and ("截止" in shot.detail or "不在公示期内" in shot.detail)


def tally(shots: list[Shot], group: str, accepted: Callable[[Shot], bool] = submitted) -> Tally:
    mine = [s for s in shots if s.group == group]
    times = sorted(s.seconds for s in mine) or [0.0]
    return Tally(
        group=group, sent=len(mine),
        accepted=sum(1 for s in mine if accepted(s)),
        late=sum(1 for s in mine if refused_late(s)),
        errors=sum(1 for s in mine if not accepted(s) and not refused_late(s)),
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
