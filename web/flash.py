"""One-time messages to the next page ("flash"), kept in the signed session, never in the URL.

An act that redirects leaves its message with ``redirect(request, url, text)``; the next page
rendered (``web.templating.render``) takes it out of the session and shows it once. A message in a
link's query string is never shown, so a crafted link cannot put words in the office's mouth.

Only the latest message is kept: the session is a cookie (at most 4 KB, and JSON escapes each
Chinese character to six bytes), and one act answers with one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi.responses import RedirectResponse
from starlette.requests import Request

KEY = "flash"
MAX_CHARS = 300

Kind = Literal["notice", "error"]


@dataclass(frozen=True)
class Flash:
    kind: Kind
    text: str


def add(request: Request, text: str, kind: Kind = "notice") -> None:
    """Leave ``text`` for the next page this browser renders."""
    request.session[KEY] = [kind, text[:MAX_CHARS]]
    request.state.flash_left = True


def redirect(request: Request, url: str, text: str, kind: Kind = "notice") -> RedirectResponse:
    """303 to ``url``, which then shows ``text`` once."""
    add(request, text, kind)
    return RedirectResponse(url, status_code=303)


def pop(request: Request) -> Flash | None:
    """The waiting message, removed from the session; None when there is none (or no session).

    A message left by this same request is dropped, not shown: a page rendered after ``add`` means
    the act failed after all (its commit, say), and "done" must not appear, here or on the next page."""
    cookie: dict[str, Any] | None = request.scope.get("session")
    if not cookie or KEY not in cookie:
        return None
    stored = cookie.pop(KEY)
    if getattr(request.state, "flash_left", False):
        return None
    if isinstance(stored, list) and len(stored) == 2 and stored[0] in ("notice", "error"):
        return Flash(kind=stored[0], text=str(stored[1]))
    return None
