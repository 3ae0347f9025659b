"""Wall time and peak memory of ``jingong simulate`` as the campaign grows.

    .venv/bin/python bench/simulate_bench.py [--sizes 1000,10000] [--seed 2021]

Each size runs in its own process (``python -m cli.main simulate --nominations N --quiet``);
the baseline is the smallest size, measured in the same run: the table shows seconds, the time
per nomination, the ratio of time per nomination to the baseline's (1.0 = linear), and the
process's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(size: int, seed: int, tmp: Path) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "JINGONG_CLOCK_START"}}
    env["JINGONG_DATA_DIR"] = str(tmp)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "simulate", "--nominations", str(size),
                                "--seed", str(seed), "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    if status != 0:
        raise SystemExit(f"simulate --nominations {size} failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows = []
    with tempfile.TemporaryDirectory(prefix="jingong-sim-bench-") as tmp:
        for size in sizes:
            seconds, rss = run(size, args.seed, Path(tmp))
            rows.append((size, seconds, rss))
            print(f"{size:>7,} nominations: {seconds:.1f} s, peak RSS {rss:.0f} MB", flush=True)
    base = rows[0][1] / rows[0][0]
    print("\n| nominations | wall time s | ms per nomination | ratio to the smallest (per nomination) | peak RSS MB |")
    print("|---|---|---|---|---|")
    for size, seconds, rss in rows:
        per = seconds / size
        print(f"| {size:,} | {seconds:.1f} | {per * 1000:.2f} | {per / base:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
