"""The signed session cookie: the committee login's random session id (the session itself lives
in the database, accounts.sessions) and the CSRF token."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

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


def log_in(request: Request, session_token: str) -> str:
    """Put a new session id (and a new CSRF token) in the cookie; returns the CSRF token."""
    request.session.clear()
    request.session["sid"] = session_token
    token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def log_out(request: Request) -> None:
    request.session.clear()


def session_token(request: Request) -> str | None:
    """The session id the cookie carries, if any."""
    sid = request.session.get("sid")
    return sid if isinstance(sid, str) and 16 <= len(sid) <= 128 else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
