"""A real ``jingong serve`` (uvicorn) in a subprocess on 127.0.0.1 and a free port, living in
the 2021 calendar through JINGONG_CLOCK_START."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    log: Path
    admin_password: str
    pid: int = 0  # the server's process (a test may kill it)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_server(tmp: Path, clock_start: str = "2021-05-20T10:00:00+08:00", *,
                   first_start: bool = True, database_url: str | None = None,
                   prepare: Callable[[str], None] | None = None,
                   extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Iterator[Server]:
    """``prepare(database_url)`` runs after ``jingong init`` and before the server starts."""
    port = free_port()
    extra_env = env or {}
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "SECRET_KEY", "ADMIN_PASSWORD", "SMTP_HOST", "MAIL_OUTBOX_DIR"}}
    env |= extra_env
    env |= {"JINGONG_DATA_DIR": str(tmp / "data"), "JINGONG_CLOCK_START": clock_start,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONUNBUFFERED": "1", "MAIL_POLL_SECONDS": "1"}
    if database_url:
        env["DATABASE_URL"] = database_url
    cli = [sys.executable, "-m", "cli.main"]
    subprocess.run([*cli, "init"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    if prepare is not None:
        prepare(database_url or f"sqlite:///{tmp / 'data' / 'jingong.db'}")
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port), *extra_args],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not come up: {log.read_text(errors='replace')}")
                time.sleep(0.2)
            found = re.search(r"with password: (\S+)", log.read_text(encoding="utf-8", errors="replace"))
            if first_start:
                assert found, "the first start prints the generated admin password"
            yield Server(url=url, data_dir=tmp / "data", log=log, admin_password=found.group(1) if found else "",
                         pid=process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
