"""Public pages per second through real HTTP, beside a bare FastAPI endpoint serving the same bytes.

    .venv/bin/python bench/pages_bench.py [--rounds 3] [--seconds 5] [--connections 32] [--threads 2]
                                          [--backends sqlite,postgresql+redis] [--burst-seconds 60]

For each backend it initialises a fresh campaign with 22 shortlisted candidates inside the voting
week and starts ``jingong serve`` (uvicorn, scheduler off). Backends: ``sqlite`` (the embedded
default: the public version is a file next to the database), ``postgresql`` (version file in the
data folder) and ``postgresql+redis`` (the scale-out setting: ``REDIS_URL`` with a key prefix of
this run's own). The baseline, ``bare``, is bench/bare_pages.py under the same uvicorn: one
``async def`` endpoint per path returning the bytes the SQLite app answered.

The load generator is wrk (``apt-get install wrk``; installed here when missing): C, one event loop
per thread, little CPU per request beside servers that answer from memory (bench/load.py, the vote
bench's aiohttp client, was not compared with it).
Each round drives every (page, target) pair for ``--seconds`` in a rotating order, so a shared
machine's drift hits every target alike; the ratio is taken within each round (median and lowest
printed). Targets: ratio >= 0.8, p99 < 50 ms at 32 connections.

The burst leg (per app backend, ``--burst-seconds``, 0 skips it): wrk mixes page views and votes
10:1 (every vote a distinct voter and candidate; rate limits off, all load comes from one address)
while a probe asks ``/healthz`` every 50 ms on a connection of its own. Targets: ``/healthz`` p99
under 100 ms during the burst, answered within 1 s after it, no connection errors.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from statistics import median

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

PG_ADMIN = os.environ.get("JINGONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "bench-secret-" + "p" * 40
CLOCK = "2021-07-02T09:00:00+08:00"  # voting open, deeds published
CANDIDATES = 22
VOTERS = 3000
PAGES = ["/", "/candidates", "/vote", "/notice", "/commended", "/api/campaign", "/api/public/candidates"]

DONE_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "bad_status": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status))
end
"""

BURST_LUA = """
local paths = {%(paths)s}
local candidates = {%(candidates)s}
local voters, nthreads = %(voters)d, %(threads)d
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
function init(args)
  tokens = {}
  for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
  counter, votes = 0, 0
end
function request()
  counter = counter + 1
  if counter %% 11 == 0 then
    local k = votes
    votes = votes + 1
    local c = k %% #candidates
    local v = (math.floor(k / #candidates) * nthreads + (tid - 1)) %% voters
    return wrk.format("POST", "/api/votes", {["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. tokens[v + 1]}, '{"nomination_id": ' .. candidates[c + 1] .. '}')
  end
  return wrk.format("GET", paths[counter %% #paths + 1])
end
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def wait_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not come up:\n{log.read_text(errors='replace')}")


@dataclass
class Target:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    legs: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve(name: str, cmd: list[str], env: dict[str, str], tmp: Path) -> Target:
    port = free_port()
    log = tmp / f"{name}.log"
    process = subprocess.Popen([*cmd, "--port", str(port)], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    target = Target(name, f"http://127.0.0.1:{port}", process, log)
    try:
        wait_up(target.url, process, log)
    except BaseException:
        target.stop()
        raise
    return target


def app_env(name: str, url: str | None, redis_prefix: str | None, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "JINGONG_CLOCK_START", "REDIS_URL"}}
    env |= {"JINGONG_DATA_DIR": str(tmp / name), "SECRET_KEY": SECRET, "JINGONG_CLOCK_START": CLOCK,
            "VOTE_RATE_PER_ADDRESS_MINUTE": "0", "VOTE_RATE_PER_VOTER_MINUTE": "0", "SCHEDULER_ENABLED": "false",
            "ADMIN_PASSWORD": "bench-admin-password", "PYTHONUNBUFFERED": "1"}
    if url:
        env["DATABASE_URL"] = url
    if redis_prefix:
        env |= {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix}
    return env


def prepare(env: dict[str, str]) -> dict[str, object]:
    """init, 22 shortlisted candidates with their deeds, verified voters and their tokens."""
    subprocess.run([sys.executable, "-m", "cli.main", "init"], cwd=ROOT, env=env, check=True, capture_output=True)
    for key in ("DATABASE_URL", "JINGONG_DATA_DIR", "SECRET_KEY", "REDIS_URL", "REDIS_PREFIX"):
        if key in env:
            os.environ[key] = env[key]
        else:
            os.environ.pop(key, None)
    from campaigns import service as campaigns
    from config.campaign import load_campaign
    from config.settings import get_settings
    from core import clock
    from core.clock import ManualClock, use_clock
    from nominations.states import State
    from storage.db import make_engine, unit_of_work
    from tests.factories import create_nomination
    from voting import identities
    from voting.models import VoterIdentity

    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    spec = load_campaign()
    deeds = "扎根生产一线三十年，攻克多项关键工艺难题，带出徒弟四十余人。" * 12
    with use_clock(ManualClock(datetime.fromisoformat("2021-05-10T10:00:00+08:00"))), \
            unit_of_work(engine) as session:
        campaign = campaigns.get_campaign(session)
        ids = [create_nomination(session, campaign, spec, State.SHORTLISTED, name=f"候选人{i:02d}", deeds=deeds).id
               for i in range(CANDIDATES)]
    cid = campaign.id or 0
    table = VoterIdentity.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        now = clock.now()
        conn.execute(insert(table), [
            {"campaign_id": cid, "kind": "email", "identity_hash": f"pages{i:08d}", "created_at": now,
             "created_minute": i, "created_net_hash": "", "failures": 0} for i in range(VOTERS)])
        rows = conn.execute(text("SELECT id FROM voter_identity ORDER BY id")).all()
    tokens = [identities.issue_token(cid, int(r[0]), settings) for r in rows]
    engine.dispose()
    return {"tokens": tokens, "candidates": ids}


def wrk(binary: str, url: str, args: argparse.Namespace, seconds: float, script: Path) -> dict[str, float]:
    out = subprocess.run([binary, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds:g}s",
                          "--timeout", "10s", "-s", str(script), url], capture_output=True, text=True, check=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line.removeprefix("RESULT "))
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "requests": raw["requests"], "bad_status": raw["bad_status"],
            "errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]}


def snapshot(target: Target, tmp: Path) -> Path:
    """The bytes the app answers for each page: what the bare endpoint serves."""
    pages = {}
    for path in PAGES:
        answer = httpx.get(target.url + path, timeout=10)
        answer.raise_for_status()
        pages[path] = [answer.headers["content-type"], answer.text]
    out = tmp / "pages.json"
    out.write_text(json.dumps(pages, ensure_ascii=False), encoding="utf-8")
    return out


class Probe(threading.Thread):
    """``/healthz`` every 50 ms on a keep-alive connection of its own; latencies and failures."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.host, self.port = url.removeprefix("http://").split(":")
        self.latencies: list[float] = []
        self.failures = 0
        self.stopping = threading.Event()

    def ask(self, conn: http.client.HTTPConnection) -> float:
        started = time.perf_counter()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise OSError(f"status {response.status}")
        return time.perf_counter() - started

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=10)
        while not self.stopping.wait(0.05):
            try:
                self.latencies.append(self.ask(conn))
            except (OSError, http.client.HTTPException):
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection(self.host, int(self.port), timeout=10)
        conn.close()


def burst(binary: str, target: Target, work: dict[str, object], args: argparse.Namespace,
          tmp: Path) -> dict[str, object]:
    tokens = tmp / f"{target.name}-tokens.txt"
    tokens.write_text("\n".join(work["tokens"]) + "\n")  # type: ignore[arg-type]
    script = tmp / f"{target.name}-burst.lua"
    script.write_text(BURST_LUA % {
        "paths": ", ".join(f'"{p}"' for p in PAGES), "candidates": ", ".join(map(str, work["candidates"])),  # type: ignore[call-overload]
        "voters": VOTERS, "threads": args.threads, "tokens": tokens} + DONE_LUA)
    probe = Probe(target.url)
    probe.start()
    result = wrk(binary, target.url, args, args.burst_seconds, script)
    probe.stopping.set()
    probe.join()
    started = time.perf_counter()
    after = httpx.get(target.url + "/healthz", timeout=10)
    after_ms = (time.perf_counter() - started) * 1000
    lat = sorted(probe.latencies)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000 if lat else float("nan")
    return {"rps": round(result["rps"], 1), "p99_ms": round(result["p99_ms"], 1), "errors": int(result["errors"]),
            "bad_status": int(result["bad_status"]), "health_p99_ms": round(p99, 1),
            "health_max_ms": round(lat[-1] * 1000, 1) if lat else float("nan"), "health_failures": probe.failures,
            "health_asked": len(lat), "after_ms": round(after_ms, 1), "after_status": after.status_code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5, help="length of each leg")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--backends", default="sqlite,postgresql+redis", help="sqlite, postgresql, postgresql+redis")
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--burst-seconds", type=float, default=60, help="0 skips the burst leg")
    args = parser.parse_args()
    binary = ensure_wrk()
    pages = args.pages.split(",")
    with tempfile.TemporaryDirectory(prefix="jingong-pages-bench-") as tmp_name:
        tmp = Path(tmp_name)
        run_id = uuid.uuid4().hex[:8]
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        databases: list[str] = []
        apps: list[Target] = []
        works: dict[str, dict[str, object]] = {}
        bare: Target | None = None
        try:
            for backend in args.backends.split(","):
                url = None
                if backend.startswith("postgresql"):
                    name = f"jingong_pages_{run_id}_{len(databases)}"
                    with admin.connect() as conn:
                        conn.execute(text(f'CREATE DATABASE "{name}"'))
                    databases.append(name)
                    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
                prefix = f"jingong-bench-{run_id}-{backend}:" if backend.endswith("+redis") else None
                env = app_env(backend.replace("+", "-"), url, prefix, tmp)
                print(f"{backend}: preparing ...", flush=True)
                works[backend] = prepare(env)
                apps.append(serve(backend, [sys.executable, "-m", "cli.main", "serve", "--no-access-log"], env, tmp))
            bare_env = dict(os.environ) | {"BARE_PAGES": str(snapshot(apps[0], tmp))}
            bare = serve("bare", [sys.executable, "-m", "uvicorn", "bench.bare_pages:app", "--no-access-log",
                                  "--log-level", "warning"], bare_env, tmp)
            targets = [*apps, bare]
            script = tmp / "done.lua"
            script.write_text(DONE_LUA)
            for r in range(args.rounds):
                for i, path in enumerate(pages):
                    turn = (r + i) % len(targets)
                    for target in targets[turn:] + targets[:turn]:
                        leg = wrk(binary, target.url + path, args, args.seconds, script)
                        target.legs.setdefault(path, []).append(leg)
                print(f"round {r + 1}: " + "; ".join(
                    f"{p} " + "/".join(f"{t.legs[p][-1]['rps']:.0f}" for t in targets) for p in pages), flush=True)
            bursts = {}
            if args.burst_seconds > 0:
                for target in apps:
                    print(f"{target.name}: burst of {args.burst_seconds:g} s ...", flush=True)
                    bursts[target.name] = burst(binary, target, works[target.name], args, tmp)
        finally:
            for target in [*apps, *([bare] if bare else [])]:
                target.stop()
            with admin.connect() as conn:
                for name in databases:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
            if any(b.endswith("+redis") for b in args.backends.split(",")):
                import redis

                client = redis.Redis.from_url(REDIS_URL)
                for key in client.scan_iter(f"jingong-bench-{run_id}-*"):
                    client.delete(key)
    report(apps, bare, pages, args, bursts)


def report(apps: list[Target], bare: Target, pages: list[str], args: argparse.Namespace,
           bursts: dict[str, dict[str, object]]) -> None:
    print("\n| page | backend | req/s | p50 ms | p99 ms | bare req/s | bare p99 ms | ratio (median, lowest) "
          "| non-2xx, errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in pages:
        base = bare.legs[path]
        for target in apps:
            legs = target.legs[path]
            ratios = [leg["rps"] / b["rps"] for leg, b in zip(legs, base, strict=True)]
            print(f"| `{path}` | {target.name} | {median(x['rps'] for x in legs):,.0f} | "
                  f"{median(x['p50_ms'] for x in legs):.1f} | {median(x['p99_ms'] for x in legs):.1f} | "
                  f"{median(x['rps'] for x in base):,.0f} | {median(x['p99_ms'] for x in base):.1f} | "
                  f"{median(ratios):.2f} ({min(ratios):.2f}) | "
                  f"{sum(int(x['bad_status']) for x in legs)}, {sum(int(x['errors']) for x in legs)} |")
    print(f"({args.rounds} rounds of {args.seconds:g} s per page and target, interleaved; wrk {args.threads} threads, "
          f"{args.connections} connections; one uvicorn process per server; {os.cpu_count()} cores shared by "
          f"servers, database and load generator)")
    if bursts:
        print("\n| backend | burst | req/s (pages + votes) | p99 ms | non-2xx | connection errors | /healthz p99 ms "
              "(max) during | /healthz failed | /healthz right after |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, b in bursts.items():
            print(f"| {name} | {args.burst_seconds:g} s, 10:1 | {b['rps']:,} | {b['p99_ms']} | {b['bad_status']} | "
                  f"{b['errors']} | {b['health_p99_ms']} ({b['health_max_ms']}) of {b['health_asked']} | "
                  f"{b['health_failures']} | {b['after_status']} in {b['after_ms']} ms |")


if __name__ == "__main__":
    main()
