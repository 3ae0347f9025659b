"""``jingong doctor``: what is not ready for a public deployment, one finding per line.

Here in ``wiring`` because the questions span the packages below (settings, accounts, the audit
trail, backups) and belong to the deployment as a whole, not to any one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from accounts import service as accounts
from accounts.models import Role
from audit import service as audit
from config.settings import Settings
from storage import backup
from storage.db import unit_of_work

BACKUP_MAX_AGE = timedelta(days=1)


@dataclass(frozen=True)
class Finding:
    check: str
    ready: bool
    message: str
    #: True for a line that informs without blocking (e.g. SQLite runs one instance)
    note: bool = False


def secret_key(settings: Settings) -> Finding:
    if settings.secret_key:
        return Finding("secret key", True, "SECRET_KEY is set")
    return Finding("secret key", False, f"SECRET_KEY is not set: sessions and voter tokens are signed with a key "
                   f"generated into {settings.data_dir}/secret_key; set SECRET_KEY to a long random value "
                   "(the same on every instance)")


def admin_password(settings: Settings, engine: Engine) -> Finding:
    if settings.admin_password:
        return Finding("admin password", False, "ADMIN_PASSWORD is set (environment or .env): remove it now that "
                       f"the office admin exists and change the password with `jingong users passwd "
                       f"{settings.admin_username}`")
    name = settings.admin_username
    try:
        with unit_of_work(engine, readonly=True) as session:
            admin = next((u for u in accounts.list_users(session)
                          if u.username == name and u.role == Role.OFFICE_ADMIN), None)
            changed = bool(audit.list_events(session, action="password_set", subject=f"user:{name}", limit=1))
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Finding("admin password", False, f"cannot read the accounts ({first}); run `jingong init`")
    if admin is None or changed:
        return Finding("admin password", True, "the first admin password has been changed (or no first admin)")
    return Finding("admin password", False, f"the office admin {name!r} still has its first password (generated "
                   f"at the first start); change it with `jingong users passwd {name}`")


def public_url(settings: Settings) -> Finding:
    if settings.public_base_url.startswith("https://"):
        return Finding("public address", True, f"PUBLIC_BASE_URL is {settings.public_base_url}")
    return Finding("public address", False, f"PUBLIC_BASE_URL is {settings.public_base_url}, not https: links in "
                   "mails and session cookies would travel in clear; set it to the https address")


def mail(settings: Settings) -> Finding:
    if settings.smtp_host:
        return Finding("mail", True, f"SMTP_HOST is {settings.smtp_host}")
    return Finding("mail", False, f"SMTP_HOST is not set: mails stay in the local outbox ({settings.mail_outbox_dir}) "
                   "and nobody receives them; set SMTP_HOST (check with `jingong mail test ADDRESS`)")


def backups(settings: Settings, now: datetime) -> Finding:
    if backup.sqlite_path(settings.effective_database_url) is None:
        return Finding("backup", True, "PostgreSQL: back up with pg_dump (`jingong backup FILE` prints the command)",
                       note=True)
    last = backup.last_backup(settings.data_dir)
    if last is None:
        return Finding("backup", False, "no backup recorded: schedule `jingong backup FILE` at least daily")
    if now - last > BACKUP_MAX_AGE:
        return Finding("backup", False, f"the last backup is from {last.isoformat(timespec='seconds')}, more than a "
                       "day ago: schedule `jingong backup FILE` at least daily")
    return Finding("backup", True, f"last backup {last.isoformat(timespec='seconds')}")


def instances(settings: Settings) -> Finding:
    if backup.sqlite_path(settings.effective_database_url) is None:
        if not settings.redis_url:
            return Finding("instances", True, "PostgreSQL: several instances may share the database; without "
                           "REDIS_URL each instance counts the rate limits alone", note=True)
        return Finding("instances", True, "PostgreSQL and REDIS_URL: several instances share the database "
                       "and the rate limits")
    return Finding("instances", True, "DATABASE_URL is SQLite: run one instance only (one `jingong serve`); "
                   "for several instances use PostgreSQL", note=True)


def proxy_headers(settings: Settings) -> Finding:
    """Whose X-Forwarded-For the app reads (web/forwarded.py): FORWARDED_ALLOW_IPS only (none
    when unset)."""
    trusted = (settings.forwarded_allow_ips or "").strip()
    behind_proxy = settings.public_base_url.startswith("https://")
    if trusted == "*":
        return Finding("proxy headers", False, "FORWARDED_ALLOW_IPS is '*': anyone can forge X-Forwarded-For and "
                       "so their address for the vote limits; list the proxy's address instead")
    if trusted:
        return Finding("proxy headers", True, f"X-Forwarded-For is trusted from {trusted} only")
    if behind_proxy:
        return Finding("proxy headers", False, "X-Forwarded-For is not trusted (FORWARDED_ALLOW_IPS unset) while "
                       "PUBLIC_BASE_URL is https, so a proxy terminates TLS: every voter would appear as the "
                       "proxy's address to the vote limits and flags; set FORWARDED_ALLOW_IPS to the proxy's address")
    return Finding("proxy headers", True, "X-Forwarded-For is not trusted (no proxy in front: FORWARDED_ALLOW_IPS "
                   "unset)", note=True)


def examine(settings: Settings, engine: Engine, now: datetime) -> list[Finding]:
    """Every check, in the order they are printed."""
    return [secret_key(settings), admin_password(settings, engine), public_url(settings), mail(settings),
            backups(settings, now), instances(settings), proxy_headers(settings)]
