"""The scale-out path across hosts: three app hosts, a database host (PostgreSQL + Redis) and a
proxy host (nginx with deploy/nginx/jingong.conf) as network namespaces on this machine. Votes
and page views go through the proxy from several client addresses; the host holding the scheduler
leadership vanishes mid-run (its link cut, its processes killed, its namespace deleted).

Shown: every acknowledged vote (201) is in the database; another host takes the leadership; the
per-address limit (120 a minute) holds across the three hosts (120 admitted, not 360)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from stages.leader import LOCK_KEY
from tests.scaleout.lab import ROOT, Lab, missing, missing_parts, wait_until
from tests.web.rush import Req, prepare_voting

pytestmark = pytest.mark.slow

CLOCK = "2021-07-02T09:00:00+08:00"  # the voting week, open
SECRET = "netns-scale-out-secret-" + "s" * 40
LIMIT = 120
APPS = {"app1": 11, "app2": 12, "app3": 13}


@dataclass
class Shot:
    status: int
    upstream: str
    vote_id: int | None
    detail: str = ""
    source: str = ""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = missing()
    if reason:
        pytest.skip(f"the scale-out lab {reason}")
    parts = missing_parts()
    if parts:
        if os.environ.get("CI"):
            pytest.fail(f"the scale-out lab: {parts} (.ci/run installs them)")
        pytest.skip(f"the scale-out lab: {parts}")
    made = Lab(tmp_path)
    try:
        made.up({"db": 10, "proxy": 20, **APPS}, client_addresses=13)
        yield made
    finally:
        made.close()
        made.remove_files()


def _app_env(lab: Lab, database_url: str, redis_url: str, tmp: Path, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "JINGONG_", "DATABASE_URL"))}
    return env | {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET,
        "JINGONG_DATA_DIR": str(tmp / name),  # each host its own folder ...
        "UPLOADS_DIR": str(tmp / "shared-uploads"),  # ... and one shared uploads folder (NFS in life)
        "FORWARDED_ALLOW_IPS": lab.hosts["proxy"].ip, "PUBLIC_BASE_URL": f"http://{lab.hosts['proxy'].ip}",
        "JINGONG_CLOCK_START": CLOCK, "SCHEDULER_SAFETY_INTERVAL": "1", "MAIL_POLL_SECONDS": "2",
        "VOTE_RATE_PER_ADDRESS_MINUTE": str(LIMIT), "PYTHONUNBUFFERED": "1",
    }


def _leader(engine: Engine) -> str | None:
    """The address of the host whose connection holds the scheduler's advisory lock."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo"),
            {"hi": LOCK_KEY >> 32, "lo": LOCK_KEY & 0xFFFFFFFF}).scalar()


def _second_in_minute(app_url: str) -> float:
    now = datetime.fromisoformat(httpx.get(f"{app_url}/healthz", timeout=5).json()["now"])
    return now.second + now.microsecond / 1e6


def _answered_by(response: aiohttp.ClientResponse) -> str:
    """The instance that answered (nginx lists every one it tried, the answering one last)."""
    return response.headers.get("X-Upstream", "").split(",")[-1].strip()


async def _vote(http: aiohttp.ClientSession, proxy: str, req: Req) -> Shot:
    try:
        async with http.post(f"{proxy}{req.path}", json=req.json, headers=req.headers) as response:
            body = await response.json(content_type=None)
            vote_id = body.get("vote_id") if response.status == 201 else None
            return Shot(response.status, _answered_by(response), vote_id,
                        "" if vote_id else str(body.get("detail") or body)[:200])
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return Shot(0, "", None)


async def _view(http: aiohttp.ClientSession, proxy: str, path: str) -> Shot:
    try:
        async with http.get(f"{proxy}{path}") as response:
            await response.read()
            return Shot(response.status, _answered_by(response), None)
    except (TimeoutError, aiohttp.ClientError):
        return Shot(0, "", None)


def _session(source: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(source, 0), limit=8)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=20))


async def _burst(proxy: str, source: str, reqs: list[Req]) -> list[Shot]:
    """Votes from one client address, eight at a time."""
    async with _session(source) as http:
        gate = asyncio.Semaphore(8)

        async def one(req: Req) -> Shot:
            async with gate:
                return await _vote(http, proxy, req)

        return list(await asyncio.gather(*(one(r) for r in reqs)))


async def _crowd(proxy: str, sources: list[str], reqs: list[Req], kill_after: int, kill: asyncio.Event,
                 killed: asyncio.Event) -> tuple[list[Shot], list[Shot], list[Shot]]:
    """Votes from twelve senders, each from its own client address, with page views between them;
    sets ``kill`` once ``kill_after`` votes were answered. Returns (votes, views that ended before
    the host went, views that began after it had gone)."""
    sessions = [_session(s) for s in sources]
    queue: asyncio.Queue[Req] = asyncio.Queue()
    for req in reqs:
        queue.put_nowait(req)
    votes: list[Shot] = []
    views: tuple[list[Shot], list[Shot]] = ([], [])
    pages = ["/candidates", "/", "/api/campaign", "/vote", "/api/public/candidates"]

    async def voter(i: int) -> None:
        http = sessions[i % len(sessions)]
        while not queue.empty():
            shot = await _vote(http, proxy, queue.get_nowait())
            shot.source = sources[i % len(sources)]
            votes.append(shot)
            if len(votes) >= kill_after:
                kill.set()

    async def reader(i: int) -> None:
        http = sessions[i % len(sessions)]
        n = 0
        while not queue.empty():
            after = killed.is_set()
            shot = await _view(http, proxy, pages[n % len(pages)])
            if after or not kill.is_set():  # ended before the host went, or began after it had gone
                views[after].append(shot)
            n += 1
        # a loaded machine may take the host away after the last vote went: read after it has gone anyway
        try:
            await asyncio.wait_for(killed.wait(), 60)
        except TimeoutError:
            return
        for _ in range(2):
            views[True].append(await _view(http, proxy, pages[n % len(pages)]))
            n += 1

    try:
        await asyncio.gather(*(voter(i) for i in range(12)), *(reader(i) for i in range(6)))
    finally:
        for http in sessions:
            await http.close()
    return votes, views[0], views[1]


def test_three_app_hosts_behind_nginx_lose_no_vote_when_one_vanishes(lab: Lab, tmp_path: Path) -> None:
    began = time.monotonic()
    db, proxy_host = lab.hosts["db"], lab.hosts["proxy"]
    database_url, redis_url = lab.start_database(db)
    env = _app_env(lab, database_url, redis_url, tmp_path, "init")
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "secret_key").write_text(SECRET + "\n", encoding="utf-8")  # prepare_voting signs with it
    subprocess.run([sys.executable, "-m", "cli.main", "init"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=120)
    reqs = prepare_voting(database_url, tmp_path / "init", 200 + 360, candidates=5)
    limit_reqs, crowd_reqs = reqs[:200], reqs[200:]

    apps = {name: lab.start_app(lab.hosts[name], _app_env(lab, database_url, redis_url, tmp_path, name))
            for name in APPS}
    proxy = lab.start_proxy(proxy_host, [f"{lab.hosts[n].ip}:8000" for n in APPS])
    for name, url in apps.items():
        wait_until(lambda url=url: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 60,
                   f"{name}: {lab.log(name)[-2000:]}")
    engine = create_engine(database_url, pool_size=2)
    try:
        wait_until(lambda: _leader(engine) is not None, 20, "a scheduler leader")
        _limit_holds_across_hosts(lab, apps, proxy, limit_reqs)
        _a_host_vanishes(lab, engine, proxy, crowd_reqs)
    finally:
        engine.dispose()
    assert time.monotonic() - began < 150


def _limit_holds_across_hosts(lab: Lab, apps: dict[str, str], proxy: str, reqs: list[Req]) -> None:
    # the windows are minutes of the campaign clock: start well inside one on every host
    wait_until(lambda: all(2 <= _second_in_minute(url) <= 45 for url in apps.values()), 62,
               "a fresh part of the minute on every host", every=0.5)
    shots = asyncio.run(_burst(proxy, lab.client_ips[-1], reqs))
    statuses = Counter(s.status for s in shots)
    assert statuses == {201: LIMIT, 429: len(reqs) - LIMIT}, statuses
    answered_by = {s.upstream for s in shots if s.status == 201}
    assert len(answered_by) == 3, answered_by  # the 120 were admitted by all three hosts together


def _a_host_vanishes(lab: Lab, engine: Engine, proxy: str, reqs: list[Req]) -> None:
    leader_ip = _leader(engine)
    leader = next(h for h in lab.hosts.values() if h.ip == leader_ip)
    survivors = {f"{h.ip}:8000" for name, h in lab.hosts.items() if name in APPS and h is not leader}

    vanished: list[float] = []

    async def run() -> tuple[list[Shot], list[Shot], list[Shot]]:
        kill, killed = asyncio.Event(), asyncio.Event()

        async def killer() -> None:
            await kill.wait()
            await asyncio.to_thread(lab.vanish, leader)
            vanished.append(time.monotonic())
            killed.set()

        crowd = asyncio.create_task(_crowd(proxy, lab.client_ips[:-1], reqs, len(reqs) // 3, kill, killed))
        await killer()
        return await crowd

    votes, before, after = asyncio.run(run())
    acknowledged = [s.vote_id for s in votes if s.status == 201]
    statuses = Counter(s.status for s in votes)
    # the votes in flight on the vanished host get no answer (timeouts, 502/504); every other is cast
    assert statuses[201] >= len(reqs) - 40, (statuses, Counter(s.detail for s in votes if s.status != 201),
                                             sorted(Counter((s.source, s.status, s.upstream) for s in votes).items()))
    assert set(statuses) <= {201, 0, 502, 503, 504}, (statuses, Counter(s.detail for s in votes if s.status != 201))
    with engine.connect() as conn:
        stored = set(conn.execute(text("SELECT id FROM vote WHERE id = ANY(:ids)"),
                                  {"ids": acknowledged}).scalars())
        counted = conn.execute(text("SELECT count(*) FROM vote")).scalar()
    assert stored == set(acknowledged), "an acknowledged vote is missing from the database"
    assert counted is not None and counted >= LIMIT + len(acknowledged)
    # the pages were read before and after; after, only the survivors answer
    assert before and after and all(s.status == 200 for s in before), Counter((s.status, s.upstream) for s in before)
    served_after = [s for s in after if s.status == 200]
    assert len(served_after) >= len(after) - 10
    assert {s.upstream for s in served_after[-20:]} <= survivors
    # the leadership moves to a surviving host (the database notices the vanished connection)
    wait_until(lambda: _leader(engine) in {s.split(":")[0] for s in survivors}, 45, "the leadership to move")
    print(f"\nscale-out: votes {dict(statuses)}, all {len(acknowledged)} acknowledged stored; page views "
          f"{len(before)} before, {len(served_after)}/{len(after)} after; leader {leader_ip} -> {_leader(engine)} "
          f"{time.monotonic() - vanished[0]:.1f} s after its host vanished; "
          f"{counted - LIMIT - len(acknowledged)} of {len(votes) - len(acknowledged)} unanswered votes were cast")
