#!/usr/bin/env python3
"""The two commands, on a fresh machine with only python3.

    python3 dev.py serve   # run the service on the embedded default (SQLite + local outbox)
    python3 dev.py test    # lint, check the direction of imports, type-check, run the whole test suite

Both create ./.venv and install the project into it on first use (and again whenever
pyproject.toml changes). Extra arguments after `test` go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".jingong-installed"


def sh(*args: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.run([str(a) for a in args], cwd=ROOT, check=check).returncode


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on whatever python3 the user has
        sys.exit(f"jingong needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        sh(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "pip")
        sh(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[dev]")
        STAMP.write_text(digest)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test(extra: list[str]) -> int:
    ensure_venv()
    sh(PY, "-m", "ruff", "check", ".")
    sh(BIN / "lint-imports")  # the direction of imports: [tool.importlinter] in pyproject.toml
    sh(PY, "-m", "mypy", "core", "config", "campaigns", "storage", "workflow", "stages", "notifications",
       "nominations", "accounts", "audit", "cli", "web", "voting", "objections", "simulate", "wiring",
       "documents")
    env = dict(os.environ)
    if not chromium():
        print("note: Debian's chromium is not installed; browser tests will be skipped "
              "(apt-get install chromium)", flush=True)
    cmd = [str(PY), "-m", "pytest", "-n", env.get("JINGONG_TEST_WORKERS", "2"), *extra]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def serve(extra: list[str]) -> int:
    ensure_venv()
    jingong = BIN / "jingong"
    sh(jingong, "init")
    return subprocess.run([str(jingong), "serve", *extra], cwd=ROOT).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"test", "serve", "setup"}:
        print(__doc__)
        return 2
    command, extra = sys.argv[1], sys.argv[2:]
    if command == "setup":
        ensure_venv()
        return 0
    try:
        return test(extra) if command == "test" else serve(extra)
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
