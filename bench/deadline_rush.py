"""The deadline rush through real HTTP: N complete drafts submitted together at 17:59:59.000 and a
second group (a quarter of N) at 18:00:00.050, Beijing time by the server's own clock, against
`jingong serve` on SQLite and on PostgreSQL. Target: the first group all accepted, the second all
refused as late, 0 errors, for every N. While the rush runs, one client keeps reading an
applicant's status page, so the table also says how long a reader waited meanwhile.

    .venv/bin/python bench/deadline_rush.py [--sizes 100,300,1000] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.web.rush import DEADLINE, fire, prepare_drafts, scratch_postgres, submissions, tally  # noqa: E402
from tests.web.server import running_server  # noqa: E402

PG_ADMIN_URL = os.environ.get("JINGONG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def read_while(url: str, token: str, stop: threading.Event, waits: list[float]) -> None:
    """One reader polling a status page through the rush: how long each answer took."""
    with httpx.Client(base_url=url, timeout=120) as client:
        while not stop.is_set():
            began = time.perf_counter()
            client.get(f"/status/{token}")
            waits.append(time.perf_counter() - began)
            time.sleep(0.05)


def one_run(size: int, database: str) -> str:
    late_size = max(1, size // 4)
    tokens: list[str] = []
    prep_seconds = 25 + size * 0.02
    start = (DEADLINE - timedelta(seconds=prep_seconds)).isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        pg = scratch_postgres(PG_ADMIN_URL) if database == "postgresql" else None
        url = pg.__enter__() if pg else None
        try:
            with running_server(Path(tmp), clock_start=start, database_url=url,
                                prepare=lambda u: tokens.extend(prepare_drafts(u, size + late_size + 1)),
                                extra_args=("--no-access-log",)) as server:
                stop, waits = threading.Event(), []
                reader = threading.Thread(target=read_while, args=(server.url, tokens[-1], stop, waits))
                reader.start()
                try:
                    late_tokens = tokens[size:size + late_size]
                    shots = fire(server.url, [
                        ("17:59:59.000", DEADLINE - timedelta(seconds=1), submissions(tokens[:size])),
                        ("18:00:00.050", DEADLINE + timedelta(milliseconds=50), submissions(late_tokens)),
                    ])
                finally:
                    stop.set()
                    reader.join()
        finally:
            if pg:
                pg.__exit__(None, None, None)
    on_time, late = tally(shots, "17:59:59.000"), tally(shots, "18:00:00.050")
    slowest_read = max(waits) if waits else 0.0
    return (f"| {database} | {size} | {on_time.accepted} | {on_time.late} | {on_time.errors} | "
            f"{late_size} | {late.accepted} | {late.late} | {late.errors} | "
            f"{on_time.p50 * 1000:.0f} | {on_time.p99 * 1000:.0f} | {max(on_time.slowest, late.slowest) * 1000:.0f} | "
            f"{slowest_read * 1000:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    print("| database | on time (17:59:59.000) | accepted | refused as late | errors | late (18:00:00.050) | "
          "accepted | refused as late | errors | p50 ms | p99 ms | max ms | slowest status page ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for database in args.databases.split(","):
            print(one_run(size, database), flush=True)


if __name__ == "__main__":
    main()
