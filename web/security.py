"""The signing key of session cookies, CSRF tokens, committee login state."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import Request

from config.settings import Settings
from core import clock

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def secret_key(settings: Settings) -> str:
    """SECRET_KEY, or one generated on first start and kept in ``data_dir/secret_key`` (0600),
    so sessions survive a restart."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 32:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)
    return value


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok(request: Request, supplied: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and supplied and hmac.compare_digest(str(expected), supplied))


def log_in(request: Request, user_id: int) -> None:
    request.session.clear()
    request.session["uid"] = user_id
    request.session["since"] = clock.now().timestamp()
    request.session["csrf"] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    request.session.clear()


def session_user_id(request: Request, max_age_seconds: int) -> int | None:
    """The logged-in user's id, or None when nobody is, or the session has expired."""
    uid, since = request.session.get("uid"), request.session.get("since")
    if not isinstance(uid, int) or not isinstance(since, int | float):
        return None
    if clock.now().timestamp() - since > max_age_seconds:
        request.session.clear()
        return None
    return uid
