"""Committee login state and CSRF tokens in the signed session cookie."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

from core import clock

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    cookie = request.session  # the signed session cookie, not a database session
    token = cookie.get("csrf")
    if not token:
        token = cookie["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok(request: Request, supplied: str | None) -> bool:
    cookie = request.session
    expected = cookie.get("csrf")
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
    cookie = request.session
    uid, since = cookie.get("uid"), cookie.get("since")
    if not isinstance(uid, int) or not isinstance(since, int | float):
        return None
    if clock.now().timestamp() - since > max_age_seconds:
        request.session.clear()
        return None
    return uid
