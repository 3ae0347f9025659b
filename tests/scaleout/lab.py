"""Hosts on this machine for the scale-out test: network namespaces on one bridge (veth pairs), a
private PostgreSQL cluster and redis-server on the database host, nginx with the deploy/ site on
the proxy host, ``jingong serve`` on each app host. Everything made here is removed by ``close``
(processes by their own ids, then the namespaces and the bridge), also after a failure."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "jingong.conf"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=60)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def missing() -> str | None:
    """Why the lab cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, a bridge)"
    if not shutil.which("ip"):
        return "no `ip` (iproute2)"
    probe = f"jgprobe{os.getpid()}"
    if _run("ip", "netns", "add", probe, check=False).returncode != 0:
        return "`ip netns add` is not permitted here"
    _run("ip", "netns", "del", probe, check=False)
    return None


def missing_parts() -> str | None:
    """Debian packages the lab runs (installed by .ci/run), or None when all are here."""
    parts = {"nginx": shutil.which("nginx") or Path("/usr/sbin/nginx").exists(),
             "redis-server": shutil.which("redis-server"), "postgresql": postgres_bin(),
             "setpriv (util-linux)": shutil.which("setpriv")}
    absent = [name for name, found in parts.items() if not found]
    return f"not installed: {', '.join(absent)}" if absent else None


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Host:
    name: str
    ns: str
    ip: str
    link: str  # the host side of its veth pair, on the bridge
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


@dataclass
class Lab:
    workdir: Path
    tag: str = field(default_factory=lambda: f"jg{os.getpid() % 100000}")
    hosts: dict[str, Host] = field(default_factory=dict)
    client_ips: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subnet = f"10.213.{os.getpid() % 250}"
        self.bridge = f"{self.tag}br"
        self.gateway = f"{self.subnet}.1"
        self._made_bridge = False
        self._links: list[str] = []

    # --- network ---------------------------------------------------------------------------

    def up(self, names: dict[str, int], client_addresses: int) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i in range(client_addresses):  # the crowd's addresses, on this machine
            ip = f"{self.subnet}.{100 + i}"
            _run("ip", "addr", "add", f"{ip}/24", "dev", self.bridge)
            self.client_ips.append(ip)
        for name, octet in names.items():
            host = Host(name, f"{self.tag}-{name}", f"{self.subnet}.{octet}", f"{self.tag}h{octet}")
            self.hosts[name] = host
            inner = f"{self.tag}n{octet}"
            _run("ip", "netns", "add", host.ns)
            _run("ip", "link", "add", host.link, "type", "veth", "peer", "name", inner)
            self._links.append(host.link)
            _run("ip", "link", "set", inner, "netns", host.ns)
            _run("ip", "link", "set", host.link, "master", self.bridge, "up")
            _run("ip", "-n", host.ns, "addr", "add", f"{host.ip}/24", "dev", inner)
            _run("ip", "-n", host.ns, "link", "set", inner, "up")
            _run("ip", "-n", host.ns, "link", "set", "lo", "up")

    def spawn(self, host: Host, args: list[str], log: str, env: dict[str, str] | None = None,
              as_user: str | None = None) -> subprocess.Popen[bytes]:
        prefix = ["ip", "netns", "exec", host.ns]
        if as_user:
            prefix += ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"]
        with (self.workdir / log).open("ab") as out:
            process = subprocess.Popen([*prefix, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        host.processes.append(process)
        return process

    def vanish(self, host: Host) -> None:
        """The host goes away as a machine does: its link first (no goodbye to anyone), then its
        processes, then the namespace."""
        _run("ip", "link", "set", host.link, "down", check=False)
        self._kill(host, signal.SIGKILL)
        _run("ip", "netns", "del", host.ns, check=False)
        del self.hosts[host.name]

    @staticmethod
    def _kill(host: Host, sig: signal.Signals, grace: float = 0.0) -> None:
        for process in host.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)  # its own session: the process and its children
        deadline = time.monotonic() + grace
        for process in host.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def close(self) -> None:
        for host in reversed(list(self.hosts.values())):  # the database host last
            with contextlib.suppress(Exception):
                self._kill(host, signal.SIGTERM, grace=5.0)
            _run("ip", "netns", "del", host.ns, check=False)
        # a deleted namespace lingers while the kernel still holds orphaned sockets of it (minutes,
        # for connections to a vanished host): deleting our side of each veth pair removes both now
        for link in self._links:
            _run("ip", "link", "del", link, check=False)
        if self._made_bridge:
            _run("ip", "link", "del", self.bridge, check=False)

    # --- services --------------------------------------------------------------------------

    def start_database(self, host: Host) -> tuple[str, str]:
        """A private PostgreSQL cluster and a redis-server on ``host``: (database URL, Redis URL)."""
        bin_dir = postgres_bin()
        assert bin_dir is not None
        data = Path(tempfile.mkdtemp(prefix=f"{self.tag}-pg-"))  # outside the test's root-only tmp path
        self.pg_data = data
        shutil.chown(data, "postgres", "postgres")
        _run("setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", str(bin_dir / "initdb"),
             "-D", str(data / "db"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
        with (data / "db" / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.subnet}.0/24 trust\n")
        # fsync off: this database host is never killed in the test, only app hosts are
        self.spawn(host, [str(bin_dir / "postgres"), "-D", str(data / "db"), "-c", f"listen_addresses={host.ip}",
                          "-c", f"unix_socket_directories={data}", "-c", "fsync=off", "-c", "max_connections=300"],
                   "postgres.log", as_user="postgres")
        self.spawn(host, ["redis-server", "--bind", host.ip, "--port", "6379", "--save", "", "--appendonly", "no",
                          "--protected-mode", "no"], "redis.log")
        admin = f"postgresql+psycopg://postgres@{host.ip}:5432/postgres"
        wait_until(lambda: _run("pg_isready", "-q", "-h", host.ip, "-p", "5432", check=False).returncode == 0,
                   30, "PostgreSQL on the database host")
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("CREATE DATABASE jingong"))
        finally:
            engine.dispose()
        return admin.rsplit("/", 1)[0] + "/jingong", f"redis://{host.ip}:6379/0"

    def start_proxy(self, host: Host, upstreams: list[str]) -> str:
        """nginx (its own config, never the system's) with the deploy/ site: upstream, listen and the
        static folder rewritten for this lab; ``X-Upstream`` tells the test who answered."""
        site = SITE.read_text(encoding="utf-8")
        servers = "".join(f"    server {u} max_fails=1 fail_timeout=10s;\n" for u in upstreams)
        site = re.sub(r"(upstream jingong \{\n)(?:\s*#.*\n|\s*server .*\n)+", lambda m: m.group(1) + servers, site)
        site = site.replace("listen 80;", f"listen {host.ip}:80;")
        site = re.sub(r"alias \S+;", f"alias {ROOT / 'web' / 'static'}/;", site)
        site = site.replace("location / {", "location / {\n        add_header X-Upstream $upstream_addr always;", 1)
        conf = self.workdir / "nginx"
        conf.mkdir()
        (conf / "site.conf").write_text(site, encoding="utf-8")
        temp = " ".join(f"{kind}_temp_path {conf / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                          "scgi"))
        (conf / "nginx.conf").write_text(
            f"user root;\nworker_processes 1;\ndaemon off;\npid {conf / 'nginx.pid'};\n"
            f"error_log {conf / 'error.log'} warn;\nevents {{ worker_connections 2048; }}\n"
            f"http {{\n  access_log off;\n  {temp}\n  include /etc/nginx/mime.types;\n"
            f"  include {conf / 'site.conf'};\n}}\n", encoding="utf-8")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        checked = _run("ip", "netns", "exec", host.ns, nginx, "-t", "-c", str(conf / "nginx.conf"), "-p", str(conf),
                       check=False)
        assert checked.returncode == 0, checked.stderr
        self.spawn(host, [nginx, "-c", str(conf / "nginx.conf"), "-p", str(conf)], "nginx.log")
        url = f"http://{host.ip}"
        wait_until(lambda: httpx.get(f"{url}/static/", timeout=1).status_code < 500, 20, "nginx")
        return url

    def start_app(self, host: Host, env: dict[str, str]) -> str:
        self.spawn(host, [sys.executable, "-m", "cli.main", "serve", "--host", host.ip, "--port", "8000",
                          "--no-access-log"], f"{host.name}.log", env=env)
        return f"http://{host.ip}:8000"

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def remove_files(self) -> None:
        data = getattr(self, "pg_data", None)
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)
