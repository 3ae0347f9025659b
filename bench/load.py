"""The load generator of bench/vote_bench.py (runs in its own process): ``--concurrency`` keep-alive
connections post ``{"nomination_id": c}`` with ``Authorization: Bearer <token>`` for every
(voter, candidate) pair in a spread order from ``--start``, for ``--seconds`` or until ``--votes`` were
sent. Prints one JSON line: requests, statuses, connection errors, the next unused pair, elapsed
seconds, p50/p99 latency in ms."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp


def pairs(voters: int, candidates: int) -> list[tuple[int, int]]:
    """Every (voter index, candidate index) once; neighbours differ in both (little row contention)."""
    stride = voters // candidates + 1
    out = []
    for i in range(voters * candidates):
        c = i % candidates
        out.append((((i // candidates) + c * stride) % voters, c))
    return out


async def run(args: argparse.Namespace) -> dict[str, object]:
    data = json.loads(Path(args.work).read_text())
    tokens, candidates = data["tokens"], data["candidates"]
    work = pairs(len(tokens), len(candidates))
    limit = min(len(work), args.start + args.votes if args.votes else len(work))
    urls = [f"{u}/api/votes" for u in args.urls.split(",")]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = args.start
    deadline = time.perf_counter() + args.seconds if args.seconds else float("inf")
    progress_every = max(1, (limit - args.start) // 10)
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)

    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker(n: int) -> None:
            nonlocal position, errors
            url = urls[n % len(urls)]
            while True:
                i = position
                if i >= limit or time.perf_counter() >= deadline:
                    return
                position += 1
                voter, candidate = work[i]
                started = time.perf_counter()
                try:
                    async with session.post(url, json={"nomination_id": candidates[candidate]},
                                            headers={"Authorization": f"Bearer {tokens[voter]}"}) as response:
                        await response.read()
                        statuses[response.status] = statuses.get(response.status, 0) + 1
                except aiohttp.ClientError:  # counted, not fatal: the run reports how many failed
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if args.progress and (i + 1 - args.start) % progress_every == 0:
                    print(json.dumps({"progress": i + 1 - args.start}), flush=True)

        begin, cpu_begin = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(n) for n in range(args.concurrency)))
        elapsed = time.perf_counter() - begin
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else 0.0

    return {"requests": len(latencies), "statuses": statuses, "errors": errors, "next": position,
            "elapsed": round(elapsed, 3),
            "cpu_s": round(time.process_time() - cpu_begin, 3),
            "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", required=True, help="comma-separated base URLs (round robin per connection)")
    parser.add_argument("--work", required=True, help="JSON file with tokens and candidate ids")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--votes", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="skip the first START (voter, candidate) pairs")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
