"""Lighthouse (mobile profile) on the public pages of a seeded voting week, all on this machine.

    (cd bench/lighthouse && npm ci)          # lighthouse, pinned in bench/lighthouse/package.json
    .venv/bin/python bench/lighthouse_bench.py [--runs 1] [--out bench/results/lighthouse]

Starts ``jingong serve`` on a scratch data folder (tests/web/server.py) with the clock in the voting
week and 22 shortlisted candidates with photos and 500-character deeds (tests/web/phone_seed.py),
then runs Lighthouse with CHROME_PATH=/usr/bin/chromium (Debian's, headless) on /, /candidates,
/vote, /candidates/7 and /apply/unit. Prints performance, accessibility and best practices per
page and the bytes transferred; exits 1 when a target is missed: accessibility and best practices
>= 95, performance >= 90, /candidates under 300 KB on first load at phone size. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.web.phone_seed import VOTING, seed_voting  # noqa: E402
from tests.web.server import running_server  # noqa: E402

CHROME = "/usr/bin/chromium"
LIGHTHOUSE = ROOT / "bench" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
PAGES = ["/", "/candidates", "/vote", "/candidates/7", "/apply/unit"]
CATEGORIES = ("performance", "accessibility", "best-practices")
TARGETS = {"performance": 90, "accessibility": 95, "best-practices": 95}
CANDIDATES_BUDGET = 300 * 1024


def lighthouse(url: str, out: Path) -> dict[str, Any]:
    env = os.environ | {"CHROME_PATH": CHROME}
    subprocess.run([str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}",
                    "--form-factor=mobile", f"--only-categories={','.join(CATEGORIES)}",
                    "--chrome-flags=--headless=new --no-sandbox --disable-gpu --no-first-run"],
                   env=env, check=True, timeout=300)
    report = json.loads(out.read_text(encoding="utf-8"))
    scores = {c: round(100 * (report["categories"][c]["score"] or 0)) for c in CATEGORIES}
    weight = report["audits"]["total-byte-weight"]["numericValue"]
    failing = [a["id"] for c in CATEGORIES for ref in report["categories"][c]["auditRefs"]
               if (a := report["audits"][ref["id"]]).get("score") is not None and a["score"] < 0.9
               and ref.get("weight", 0) > 0]
    return {**scores, "bytes": weight, "failing": failing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lighthouse")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        print(f"{LIGHTHOUSE} is missing: run (cd bench/lighthouse && npm ci)")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        def prepare(url: str) -> None:
            seed_voting(url, Path(tmp) / "data")

        with running_server(Path(tmp), VOTING, prepare=prepare) as server:
            print(f"{'page':<16}{'perf':>6}{'a11y':>6}{'best':>6}{'KB':>8}  below 90 (weighted audits)")
            for path in PAGES:
                name = path.strip("/").replace("/", "-") or "home"
                result = lighthouse(server.url + path, args.out / f"{name}.json")
                print(f"{path:<16}{result['performance']:>6}{result['accessibility']:>6}{result['best-practices']:>6}"
                      f"{result['bytes'] / 1024:>8.0f}  {' '.join(result['failing'])}")
                missed += [f"{path} {c} {result[c]} < {t}" for c, t in TARGETS.items() if result[c] < t]
                if path == "/candidates" and result["bytes"] >= CANDIDATES_BUDGET:
                    missed.append(f"/candidates {result['bytes'] / 1024:.0f} KB >= 300 KB")
    for line in missed:
        print("MISSED", line)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
