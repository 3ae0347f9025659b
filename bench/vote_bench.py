"""Sustained votes per second through real HTTP, beside a bare FastAPI endpoint.

    .venv/bin/python bench/vote_bench.py [--seconds 15] [--concurrency 32] [--instances 1]
                                         [--backends sqlite,postgresql] [--votes N]

For each database it initialises a fresh campaign, shortlists 25 candidates, creates verified
voters (their signed tokens made with the same secret key as the server), starts ``jingong serve``
(uvicorn, the embedded default or PostgreSQL; ``--instances`` app processes on PostgreSQL), and
drives ``POST /api/votes`` from a separate load-generator process (bench/load.py, aiohttp,
keep-alive connections). The baseline is bench/bare_app.py: the same body and header parsed by
FastAPI under the same uvicorn (as many instances), no work, driven by the same generator in the
same run.
Prints votes/s, p50/p99 latency, the ratio to the bare endpoint, and the server's RSS.
Rate limits are off for the run (all load comes from one address); every vote is a distinct
(voter, candidate, day), so every request does the full work of an accepted vote.
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
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

PG_ADMIN = os.environ.get("JINGONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-" + "b" * 40
CLOCK = "2021-07-02T09:00:00+08:00"  # voting open
CANDIDATES = 25


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
    from config.campaign import load_campaign
    from config.settings import get_settings
    from core import clock
    from core.clock import ManualClock, use_clock
    from stages import service as stages
    from storage.db import make_engine, unit_of_work
    from tests.factories import create_nomination
    from voting import service as voting
    from voting.models import VoterIdentity
    from workflow.states import State

    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    spec = load_campaign()
    with use_clock(ManualClock(datetime.fromisoformat("2021-05-10T10:00:00+08:00"))):
        with unit_of_work(engine) as session:
            campaign = stages.get_campaign(session)
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
    tokens = [voting.issue_token(cid, int(r[0]), settings) for r in rows]
    engine.dispose()
    return {"tokens": tokens, "candidates": ids}


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def drive(urls: list[str], work: Path, args: argparse.Namespace, pids: list[int], *,
          votes: int = 0) -> dict[str, object]:
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--urls", ",".join(urls), "--work", str(work),
           "--concurrency", str(args.concurrency)]
    cmd += ["--votes", str(votes), "--progress"] if votes else ["--seconds", str(args.seconds)]
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(sum(rss_kb(p) for p in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
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
    result["rss_mb_max"] = round(max(samples or [0]) / 1024, 1)
    result["rss_progress_mb"] = [(n, round(kb / 1024, 1)) for n, kb in progress]
    return result


def bench_backend(name: str, url: str | None, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "JINGONG_CLOCK_START"}}
    env |= {"JINGONG_DATA_DIR": str(tmp / name), "SECRET_KEY": SECRET, "JINGONG_CLOCK_START": CLOCK,
            "VOTE_RATE_PER_ADDRESS_MINUTE": "0", "VOTE_RATE_PER_VOTER_MINUTE": "0", "SCHEDULER_ENABLED": "false",
            "ADMIN_PASSWORD": "bench-admin-password", "PYTHONUNBUFFERED": "1"}
    if url:
        env["DATABASE_URL"] = url
    needed = args.votes or int(args.seconds * 4000) + 1000
    work = prepare(env, needed // CANDIDATES + 1)
    work_file = tmp / f"{name}-work.json"
    work_file.write_text(json.dumps(work))
    instances = args.instances if url else 1
    servers, urls = [], []
    for i in range(instances):
        port = free_port()
        log = tmp / f"{name}-{i}.log"
        servers.append((start([sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--no-access-log"],
                              env, log), log))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for (process, log), u in zip(servers, urls, strict=True):
            wait_up(u, process, log)
        pids = [p.pid for p, _ in servers]
        result = drive(urls, work_file, args, pids, votes=args.votes)
        result["rss_mb_start"] = round(sum(rss_kb(p) for p in pids) / 1024, 1)
        check = subprocess.run([sys.executable, "-m", "cli.main", "votes", "verify"], cwd=ROOT, env=env,
                               capture_output=True, text=True)
        result["verify"] = (check.stdout or check.stderr).strip().splitlines()[-1]
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(20)
    return result


def bench_bare(args: argparse.Namespace, tmp: Path, work: Path) -> dict[str, object]:
    """The bare endpoint with as many instances as the PostgreSQL run had."""
    processes, urls = [], []
    for i in range(args.instances):
        port = free_port()
        log = tmp / f"bare-{i}.log"
        processes.append((start([sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port),
                                 "--no-access-log", "--log-level", "warning"], dict(os.environ), log), log))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for (process, log), url in zip(processes, urls, strict=True):
            wait_up(url, process, log)
        return drive(urls, work, args, [p.pid for p, _ in processes])
    finally:
        for process, _ in processes:
            process.terminate()
            process.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--instances", type=int, default=1, help="app processes on PostgreSQL")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--votes", type=int, default=0, help="memory run: N votes on PostgreSQL, RSS sampled")
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="jingong-vote-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pg_name = f"jingong_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        backends = ["postgresql"] if args.votes else args.backends.split(",")
        try:
            for backend in backends:
                url = None
                if backend == "postgresql":
                    with admin.connect() as conn:
                        conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
                    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_name
                print(f"{backend}: preparing ...", flush=True)
                results[backend] = bench_backend(backend, url, args, tmp)
                print(f"{backend}: {json.dumps(results[backend])}", flush=True)
            if not args.votes:
                work = next(tmp.glob("*-work.json"))
                results["bare"] = bench_bare(args, tmp, work)
                print(f"bare: {json.dumps(results['bare'])}", flush=True)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
    if args.votes:
        r = results["postgresql"]
        print(f"\n{args.votes:,} votes on PostgreSQL: {r['rps']} votes/s, p99 {r['p99_ms']} ms, "
              f"server RSS along the run (votes, MB): {r['rss_progress_mb']}; {r['verify']}")
        return
    bare = results["bare"]
    print("\n| endpoint | votes/s | p50 ms | p99 ms | ratio to bare | server RSS max MB | statuses |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = float(r["rps"]) / float(bare["rps"]) if bare["rps"] else 0  # type: ignore[arg-type]
        print(f"| {name} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {ratio:.2f} | {r['rss_mb_max']} | "
              f"{r['statuses']} |")
    print(f"(concurrency {args.concurrency}, {args.seconds:g} s each, {args.instances} app instance(s) on "
          f"PostgreSQL; {os.cpu_count()} cores shared by servers and load generator)")


if __name__ == "__main__":
    main()
