"""Sustained votes per second through real HTTP, beside a bare FastAPI endpoint.

    .venv/bin/python bench/vote_bench.py [--rounds 3] [--seconds 8] [--concurrency 32] [--instances 1]
                                         [--backends sqlite,postgresql] [--votes N]

For each database it initialises a fresh campaign, shortlists 25 candidates, creates verified
voters (their signed tokens made with the same secret key as the server) and starts ``jingong
serve`` (uvicorn, the embedded default or PostgreSQL; ``--instances`` app processes on PostgreSQL).
The baselines are bench/bare_app.py under the same uvicorn (as many instances): the same body and
header parsed by FastAPI, no work, once as ``async def`` (``bare``, the ratio's denominator) and
once as a plain ``def`` run in FastAPI's thread pool (``bare-threadpool``).

Every server is started first; then each round drives each of them for ``--seconds`` in turn (the
order rotates from round to round) with the same load generator, a separate process (bench/load.py,
aiohttp, keep-alive connections). A shared machine drifts: interleaving puts every target under the
same drift, and the ratio is taken within each round. Prints, per target, votes/s and the server's
CPU per request summed over the rounds (/proc/<pid>/stat utime + stime of the server processes over
each leg; for the apps also as a multiple of the bare endpoint's), the median p50/p99 latency, the
ratio to ``bare`` (the median of the rounds, and the lowest) against issue 13's floor (PostgreSQL
0.4, SQLite 0.3), and the server's RSS.
Rate limits are off for the run (all load comes from one address); every vote is a distinct
(voter, candidate, day), so every request does the full work of an accepted vote; ``votes verify``
checks every counter against the rows at the end.
``--votes N`` instead runs N votes against PostgreSQL and samples the server's RSS along the way
(the memory-flat check).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
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

try:
    import pwd

    PG_UID: int | None = pwd.getpwnam("postgres").pw_uid
except (ImportError, KeyError):  # no local PostgreSQL user: its CPU is not measured
    PG_UID = None
PG_ADMIN = os.environ.get("JINGONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-" + "b" * 40
CLOCK = "2021-07-02T09:00:00+08:00"  # voting open
CANDIDATES = 25
#: issue 13's floor: the median ratio to the bare ``async def`` endpoint each database should reach
TARGETS = {"postgresql": 0.4, "sqlite": 0.3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds() -> float:
    """CPU time used so far by the PostgreSQL server's processes (all of them: the load runs alone)."""
    total = 0.0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if "\nUid:\t" + str(PG_UID) + "\t" in status.read_text():
                total += cpu_seconds(int(status.parent.name))
        except (OSError, ValueError):
            continue
    return total


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


def prepare(env: dict[str, str], voters: int) -> dict[str, object]:
    """init, 25 shortlisted candidates, ``voters`` verified voters and their tokens."""
    subprocess.run([sys.executable, "-m", "cli.main", "init"], cwd=ROOT, env=env, check=True, capture_output=True)
    for key in ("DATABASE_URL", "JINGONG_DATA_DIR", "SECRET_KEY"):
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
    start_of_voting = ManualClock(datetime.fromisoformat("2021-05-10T10:00:00+08:00"))
    with use_clock(start_of_voting), unit_of_work(engine) as session:
        campaign = campaigns.get_campaign(session)
        ids = [create_nomination(session, campaign, spec, State.SHORTLISTED, name=f"候选人{i:02d}").id
               for i in range(CANDIDATES)]
    cid = campaign.id or 0
    table = VoterIdentity.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        now = clock.now()
        for start in range(0, voters, 5000):
            conn.execute(insert(table), [
                {"campaign_id": cid, "kind": "email", "identity_hash": f"bench{i:08d}", "created_at": now,
                 "created_minute": i, "created_net_hash": "", "failures": 0}
                for i in range(start, min(voters, start + 5000))])
        rows = conn.execute(text("SELECT id FROM voter_identity ORDER BY id")).all()
    tokens = [identities.issue_token(cid, int(r[0]), settings) for r in rows]
    engine.dispose()
    return {"tokens": tokens, "candidates": ids}


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


@dataclass
class Target:
    """One endpoint under load: its server processes, the work its generator draws from, and the
    result of every leg driven against it."""

    name: str
    urls: list[str]
    servers: list[tuple[subprocess.Popen[bytes], Path]]
    work: Path
    env: dict[str, str] | None = None  # the app's environment (for `votes verify`); None for a baseline
    next_pair: int = 0
    legs: list[dict[str, object]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self.servers]

    def stop(self) -> None:
        for process, _ in self.servers:
            process.terminate()
        for process, _ in self.servers:
            process.wait(20)


def serve(name: str, cmds: list[list[str]], env: dict[str, str], tmp: Path, work: Path,
          app_env: dict[str, str] | None) -> Target:
    servers, urls = [], []
    for i, cmd in enumerate(cmds):
        port = free_port()
        log = tmp / f"{name}-{i}.log"
        servers.append((start([*cmd, "--port", str(port)], env, log), log))
        urls.append(f"http://127.0.0.1:{port}")
    target = Target(name, urls, servers, work, app_env)
    try:
        for (process, log), url in zip(servers, urls, strict=True):
            wait_up(url, process, log)
    except BaseException:
        target.stop()
        raise
    return target


def drive(target: Target, args: argparse.Namespace, *, votes: int = 0) -> dict[str, object]:
    """One leg: the generator against ``target`` for ``--seconds`` (or ``votes`` votes), from the
    first pair no earlier leg used."""
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--urls", ",".join(target.urls), "--work",
           str(target.work), "--concurrency", str(args.concurrency), "--start", str(target.next_pair)]
    cmd += ["--votes", str(votes), "--progress"] if votes else ["--seconds", str(args.seconds)]
    pids = target.pids
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(sum(rss_kb(p) for p in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = sum(cpu_seconds(p) for p in pids)
    db_before = database_cpu_seconds()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    progress: list[tuple[int, int]] = []
    result: dict[str, object] = {}
    assert process.stdout is not None
    for line in process.stdout:
        data = json.loads(line)
        if "progress" in data:
            progress.append((data["progress"], sum(rss_kb(p) for p in pids)))
            print(f"  {data['progress']:>9,} votes  server RSS {progress[-1][1] / 1024:.0f} MB", flush=True)
        else:
            result = data
    process.wait()
    stop.set()
    if "requests" not in result:
        for _, log in target.servers:
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise SystemExit(f"the load generator failed against {target.name}")
    target.next_pair = int(result["next"])  # type: ignore[call-overload]
    # the server's own CPU per request: steadier than the rate on a shared machine
    result["server_cpu_s"] = sum(cpu_seconds(p) for p in pids) - cpu_before
    result["db_cpu_s"] = database_cpu_seconds() - db_before
    result["rss_mb_max"] = round(max(samples or [0]) / 1024, 1)
    result["rss_progress_mb"] = [(n, round(kb / 1024, 1)) for n, kb in progress]
    target.legs.append(result)
    return result


def app_env(name: str, url: str | None, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "JINGONG_CLOCK_START"}}
    env |= {"JINGONG_DATA_DIR": str(tmp / name), "SECRET_KEY": SECRET, "JINGONG_CLOCK_START": CLOCK,
            "VOTE_RATE_PER_ADDRESS_MINUTE": "0", "VOTE_RATE_PER_VOTER_MINUTE": "0", "SCHEDULER_ENABLED": "false",
            "ADMIN_PASSWORD": "bench-admin-password", "PYTHONUNBUFFERED": "1"}
    if url:
        env["DATABASE_URL"] = url
    return env


def start_app(name: str, url: str | None, args: argparse.Namespace, tmp: Path) -> Target:
    env = app_env(name, url, tmp)
    needed = args.votes or int(args.rounds * args.seconds * 4000) + 1000
    work = tmp / f"{name}-work.json"
    work.write_text(json.dumps(prepare(env, needed // CANDIDATES + 1)))
    instances = args.instances if url else 1
    cmd = [sys.executable, "-m", "cli.main", "serve", "--no-access-log"]
    return serve(name, [cmd] * instances, env, tmp, work, env)


def start_bare(name: str, app: str, args: argparse.Namespace, tmp: Path, work: Path) -> Target:
    cmd = [sys.executable, "-m", "uvicorn", app, "--no-access-log", "--log-level", "warning"]
    return serve(name, [cmd] * args.instances, dict(os.environ), tmp, work, None)


def verify(target: Target) -> str:
    assert target.env is not None
    check = subprocess.run([sys.executable, "-m", "cli.main", "votes", "verify"], cwd=ROOT, env=target.env,
                           capture_output=True, text=True)
    return (check.stdout or check.stderr).strip().splitlines()[-1]


def summary(target: Target, bare: Target) -> dict[str, object]:
    legs = target.legs
    requests = sum(int(leg["requests"]) for leg in legs)  # type: ignore[call-overload]
    elapsed = sum(float(leg["elapsed"]) for leg in legs)  # type: ignore[arg-type]
    ratios = [float(leg["rps"]) / float(b["rps"])  # type: ignore[arg-type]
              for leg, b in zip(legs, bare.legs, strict=True)]
    statuses: dict[str, int] = {}
    for leg in legs:
        for status, n in leg["statuses"].items():  # type: ignore[attr-defined]
            statuses[status] = statuses.get(status, 0) + n
    return {"rps": round(requests / elapsed, 1), "p50_ms": round(median(float(leg["p50_ms"]) for leg in legs), 1),
            "p99_ms": round(median(float(leg["p99_ms"]) for leg in legs), 1),  # type: ignore[arg-type]
            "ratio": round(median(ratios), 2), "ratio_min": round(min(ratios), 2),
            "server_cpu_ms": round(sum(float(leg["server_cpu_s"]) for leg in legs) * 1000 / max(requests, 1), 3),
            "db_cpu_ms": round(sum(float(leg["db_cpu_s"]) for leg in legs) * 1000 / max(requests, 1), 3),
            "load_cpu_ms": round(sum(float(leg["cpu_s"]) for leg in legs) * 1000 / max(requests, 1), 3),
            "rss_mb_max": max(float(leg["rss_mb_max"]) for leg in legs),  # type: ignore[arg-type]
            "statuses": statuses, "errors": sum(int(leg.get("errors", 0)) for leg in legs)}  # type: ignore[call-overload]


def memory_run(args: argparse.Namespace, url: str, tmp: Path) -> None:
    target = start_app("postgresql", url, args, tmp)
    try:
        rss_start = round(sum(rss_kb(p) for p in target.pids) / 1024, 1)
        r = drive(target, args, votes=args.votes)
        checked = verify(target)
    finally:
        target.stop()
    print(f"\n{args.votes:,} votes on PostgreSQL: {r['rps']} votes/s, p99 {r['p99_ms']} ms, server RSS at start "
          f"{rss_start} MB, along the run (votes, MB): {r['rss_progress_mb']}; {checked}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8, help="length of each leg")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--instances", type=int, default=1, help="app processes on PostgreSQL (and of each baseline)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--votes", type=int, default=0, help="memory run: N votes on PostgreSQL, RSS sampled")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jingong-vote-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pg_name = f"jingong_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        targets: list[Target] = []
        try:
            backends = ["postgresql"] if args.votes else args.backends.split(",")
            pg_url = None
            if "postgresql" in backends:
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
                pg_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_name
            if args.votes:
                assert pg_url is not None
                memory_run(args, pg_url, tmp)
                return
            for backend in backends:
                print(f"{backend}: preparing ...", flush=True)
                targets.append(start_app(backend, pg_url if backend == "postgresql" else None, args, tmp))
            work = targets[0].work
            bare = start_bare("bare", "bench.bare_app:app", args, tmp, work)
            targets += [bare, start_bare("bare-threadpool", "bench.bare_app:app_threadpool", args, tmp, work)]
            load_before = os.getloadavg()[0]
            for r in range(args.rounds):
                turn = targets[r % len(targets):] + targets[:r % len(targets)]
                for target in turn:
                    leg = drive(target, args)
                    print(f"round {r + 1} {target.name}: {leg['rps']} req/s, p99 {leg['p99_ms']} ms", flush=True)
            load_after = os.getloadavg()[0]
            checks = {t.name: verify(t) for t in targets if t.env is not None}
        finally:
            for target in targets:
                target.stop()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
    print("\n| endpoint | votes/s | p50 ms | p99 ms | ratio to bare (median, lowest) | target | CPU ms/request: app "
          "(× bare), PostgreSQL, load generator | app RSS max MB | statuses |")
    print("|---|---|---|---|---|---|---|---|---|")
    bare_cpu = summary(bare, bare)["server_cpu_ms"]
    for target in targets:
        row = summary(target, bare)
        errors = f", {row['errors']} connection errors" if row["errors"] else ""
        times = float(str(row["server_cpu_ms"])) / float(str(bare_cpu)) if bare_cpu else 0.0
        cpu = f"{row['server_cpu_ms']} ({times:.1f}×), {row['db_cpu_ms']}, {row['load_cpu_ms']}"
        goal = TARGETS.get(target.name)
        verdict = "" if goal is None else f"≥ {goal}: {'met' if float(str(row['ratio'])) >= goal else 'MISSED'}"
        ratio = f"{row['ratio']:.2f} ({row['ratio_min']:.2f})"
        print(f"| {target.name} | {row['rps']} | {row['p50_ms']} | {row['p99_ms']} | {ratio} | {verdict} | {cpu} "
              f"| {row['rss_mb_max']} | {row['statuses']}{errors} |")
    print(f"({args.rounds} rounds of {args.seconds:g} s per endpoint, interleaved; concurrency {args.concurrency}; "
          f"{args.instances} instance(s) of the PostgreSQL app and of each baseline; {os.cpu_count()} cores shared "
          f"by servers, database and load generator; load average {load_before:.1f} before the rounds, "
          f"{load_after:.1f} after: above {os.cpu_count()} other work shared the machine)")
    for name, checked in checks.items():
        print(f"{name}: {checked}")


if __name__ == "__main__":
    main()
