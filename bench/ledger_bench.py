"""What the transparency ledger costs.

    .venv/bin/python bench/ledger_bench.py [--votes 1000000] [--transitions 300] [--rounds 4] [--pg URL]

1. The hash chain on the transition service: transitions per second (one ``pass_screening`` per
   transaction, as the committee's screening desk fires them) with the chain and without it (the
   append replaced by a no-op), in interleaved rounds on the same database, per database
   (SQLite file; PostgreSQL when ``--pg`` is given or the default server answers).
2. Building the published vote list for N votes (``voting.publication.build``: the CSV, its
   SHA-256, the receipt index, every level of the Merkle tree), in a child process so that its
   peak RSS is its own; also at N/10, to show that memory does not grow with N; and
   ``tools/verify_tally.py`` recounting the file.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- 1. the chain on the transition service -------------------------------------------------

def _transition_rounds(url: str, per_round: int, rounds: int) -> dict[str, list[float]]:
    from audit import chain
    from config.campaign import load_campaign
    from core.actor import Actor
    from core.clock import ManualClock, use_clock
    from nominations.states import State
    from stages import service as stages
    from storage.db import make_engine, unit_of_work
    from storage.migrate import upgrade
    from tests.conftest import beijing
    from tests.factories import create_nomination
    from wiring.tables import metadata
    from workflow import service as workflow
    from workflow.machine import Event

    engine = make_engine(url)
    upgrade(engine, metadata)
    spec = load_campaign()
    real_append = chain.append
    results: dict[str, list[float]] = {"chain": [], "no chain": []}
    with use_clock(ManualClock(beijing(2021, 5, 1, 10, 0))):
        with unit_of_work(engine) as session:
            campaign = stages.load_campaign(session, spec)
        for r in range(rounds):
            order = ["chain", "no chain"] if r % 2 == 0 else ["no chain", "chain"]
            for mode in order:
                with unit_of_work(engine) as session:
                    ids = [create_nomination(session, campaign, spec, State.SUBMITTED).id or 0
                           for _ in range(per_round)]
                chain.append = real_append if mode == "chain" else (lambda *a, **k: None)  # type: ignore[assignment]
                started = time.perf_counter()
                for nomination_id in ids:
                    with unit_of_work(engine) as session:
                        workflow.transition(session, nomination_id, Event.PASS_SCREENING, actor=Actor.system("b"))
                results[mode].append(per_round / (time.perf_counter() - started))
                chain.append = real_append  # type: ignore[assignment]
    engine.dispose()
    return results


# --- 2. the published vote list --------------------------------------------------------------

def _fill_votes(database: Path, votes: int) -> None:
    """``votes`` rows straight into SQLite (25 candidates, 1,000 voters, one vote each a day)."""
    from storage.db import make_engine
    from storage.migrate import upgrade
    from wiring.tables import metadata

    salt = os.urandom(16)  # receipt hashes as random as real ones (codes are not needed here)
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine, metadata)
    engine.dispose()
    conn = sqlite3.connect(database)
    conn.execute("INSERT INTO campaign (id, slug, name, award_name, edition, timezone, spec, created_at) "
                 "VALUES (1, 'b', 'b', 'b', 3, 'Asia/Shanghai', '{}', '2021-04-01 00:00:00')")
    per_day = 25 * 1000
    days = [f"2021-{7 + d // 28:02d}-{1 + d % 28:02d}" for d in range(votes // per_day + 1)]
    rows = ((1, 1 + i % 25, 1 + (i // 25) % 1000, days[i // per_day], 1, "2021-07-01 08:00:00", 0, "ip", "net",
             i % 997 != 0, None if i % 997 else "automated", hashlib.sha256(salt + i.to_bytes(8, "big")).hexdigest())
            for i in range(votes))
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.executemany("INSERT INTO vote (campaign_id, nomination_id, voter_id, day, slot, cast_at, minute, ip_hash, "
                     "net_hash, valid, invalid_category, receipt_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()


def _build_child(database: str, data_dir: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from config.settings import Settings
    from storage.db import make_engine, unit_of_work
    from voting import publication

    engine = make_engine(f"sqlite:///{database}")
    settings = Settings.model_validate({"JINGONG_DATA_DIR": data_dir})
    before = _rss_mb()
    started = time.perf_counter()
    with unit_of_work(engine, readonly=True) as session:
        built, folder = publication.build(session, 1, settings)
    seconds = time.perf_counter() - started
    out.put((seconds, before, _rss_mb(), built.rows, str(folder / "votes.csv"), built.sha256, built.merkle_root))


def _build(votes: int, workdir: Path) -> tuple[float, float, float, int, str, str, str]:
    database = workdir / f"votes-{votes}.db"
    started = time.perf_counter()
    _fill_votes(database, votes)
    print(f"  ({votes:,} vote rows written in {time.perf_counter() - started:.1f} s)", flush=True)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_build_child, args=(str(database), str(workdir / f"data-{votes}"), out))
    child.start()
    result = out.get(timeout=3600)
    child.join()
    return result  # type: ignore[no-any-return]


def _pg_url(given: str | None) -> str | None:
    url = given or PG_DEFAULT
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return url.rsplit("/", 1)[0] + "/" + name
    except Exception as exc:  # noqa: BLE001 - no server: SQLite only
        print(f"PostgreSQL not used: {str(exc).splitlines()[0]}")
        return None


def _drop_pg(url: str) -> None:
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--transitions", type=int, default=300, help="transitions per round and mode")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pg", default=None, help="PostgreSQL admin URL (default: the local server)")
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("JINGONG_DATA_DIR", tempfile.mkdtemp(prefix="ledger-bench-var-"))
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        workdir = Path(tmp)
        targets = [("SQLite", f"sqlite:///{workdir / 'transitions.db'}")]
        pg = _pg_url(args.pg)
        if pg:
            targets.append(("PostgreSQL", pg))
        print(f"1. transitions/s, one per transaction, {args.transitions} per round, {args.rounds} interleaved rounds")
        for label, url in targets:
            try:
                res = _transition_rounds(url, args.transitions, args.rounds)
            finally:
                if url == pg:
                    _drop_pg(pg)
            on, off = statistics.median(res["chain"]), statistics.median(res["no chain"])
            ratios = [a / b for a, b in zip(res["chain"], res["no chain"], strict=True)]
            print(f"   {label}: with chain {on:,.0f}/s, without {off:,.0f}/s, ratio {on / off:.2f} "
                  f"(per round {min(ratios):.2f}–{max(ratios):.2f})", flush=True)
        if args.skip_build:
            return
        print("2. building the published vote list (child process; peak RSS of the child)")
        for votes in (args.votes // 10, args.votes):
            seconds, before, peak, rows, path, sha, root = _build(votes, workdir)
            size = Path(path).stat().st_size / 1e6
            print(f"   {rows:,} votes: {seconds:.1f} s, peak RSS {peak:.0f} MB (at start {before:.0f} MB), "
                  f"file {size:.0f} MB, root {root[:16]}…", flush=True)
            started = time.perf_counter()
            check = subprocess.run([sys.executable, str(ROOT / "tools" / "verify_tally.py"), path, "--sha256", sha,
                                    "--root", root], capture_output=True, text=True)
            print(f"   tools/verify_tally.py recount: {time.perf_counter() - started:.1f} s, exit {check.returncode}",
                  flush=True)


if __name__ == "__main__":
    main()
