"""The public pages from memory: rendered once per public version, answered from the event loop.

What the public pages (``PUBLIC_PATHS``) show changes only when the committee or the scheduler acts,
and every such commit moves the public version (``storage/public_version.py``). So the rendered
bytes are kept per path with the version they were rendered under, and a request is answered from
them when the version is still the same: no worker thread, no database connection, no admission
slot. A request that finds the version moved (or the entry older than ``PAGE_CACHE_SECONDS``: the
pages show the time, open windows and possibly live counts) renders the page once through the
application; requests arriving meanwhile wait for that render instead of rendering it too. When
only the lifetime is over (no commit since), the entry is answered once more while one render runs
in the background: the time shown lags by at most two lifetimes (2 s by default), and the crowd
never queues behind the clock. A moved version always waits for the new render.

Answers carry a strong ``ETag`` (a digest of the bytes), ``Last-Modified`` (when these bytes were
first rendered), ``Cache-Control: public, max-age=0, must-revalidate`` (a proxy or CDN may keep the
page but asks again every time; the answer to that is a 304 from memory, and an act shows on the
next request everywhere) and ``Vary: Cookie``; ``If-None-Match`` / ``If-Modified-Since`` give 304.

Pages that differ per person are never taken from or put into the cache: a request carrying the
committee's session cookie (flash messages, the logged-in menu, CSRF tokens) or a voter's cookie
(the voting page shows the verified voter's buttons) is rendered by the application and answered
``Cache-Control: private, no-cache``; an answer that sets a cookie or is not a 200 is never kept.
Query strings play no part in these pages, so they are not part of the key (a crafted query
cannot fill the memory or force renders).

HEAD is answered wherever GET is, for every path: the request goes through as a GET and the body
is dropped (FastAPI's routes answer GET only).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import clock
from storage.public_version import VersionStore

PUBLIC_PATHS = frozenset({"/", "/candidates", "/notice", "/commended", "/vote", "/api/campaign",
                          "/api/public/candidates", "/notice.pdf", "/commended/decision.pdf",
                          "/commended/decision.docx"})
#: a candidate's own page, ``/candidates/{编号}``, and a winner's, ``/commended/{id}`` (only 200s are
#: kept, so the keys are bounded by the candidates)
CANDIDATE_PAGE = re.compile(r"/candidates/[1-9][0-9]{0,3}|/commended/[1-9][0-9]{0,8}")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or CANDIDATE_PAGE.fullmatch(path) is not None
#: pages that show the running time (the deadline's countdown, ``now``) or live vote counts: they
#: live ``PAGE_CACHE_SECONDS``; the others change only with commits (the scheduler's step at each
#: stage edge moves the version too) and live ``PAGE_CACHE_QUIET_SECONDS``, a bound for a clock
#: edge passed while no scheduler runs
CLOCK_PATHS = frozenset({"/", "/vote", "/api/campaign"})
#: the cookies of a person: the committee's signed session (flash, CSRF, login) and a verified voter
PRIVATE_COOKIES = (b"jingong_session=", b"jingong_voter=")
PUBLIC_CACHE_CONTROL = b"public, max-age=0, must-revalidate"
PRIVATE_CACHE_CONTROL = b"private, no-cache"
#: headers of the rendered answer that are the cache's to set, or the server's
_OWN_HEADERS = frozenset({b"content-length", b"etag", b"last-modified", b"cache-control", b"vary", b"date"})

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Entry:
    version: str
    #: by the campaign's clock (``core.clock``): a clock moved on (tests, demos) past the lifetime,
    #: or back before the render, renders again
    rendered_at: datetime
    expires: datetime
    etag: bytes
    modified: float  # epoch seconds, whole
    full: Headers  # the 200's headers
    not_modified: Headers  # the 304's headers
    body: bytes


@dataclass
class Rendered:
    status: int
    headers: Headers
    body: bytes


def _header_values(scope: Scope) -> tuple[bytes, bytes | None, bytes | None]:
    cookie, if_none_match, if_modified_since = b"", None, None
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookie += value
        elif name == b"if-none-match":
            if_none_match = value
        elif name == b"if-modified-since":
            if_modified_since = value
    return cookie, if_none_match, if_modified_since


def is_private(cookie: bytes) -> bool:
    return any(name in cookie for name in PRIVATE_COOKIES)


def not_modified(entry: Entry, if_none_match: bytes | None, if_modified_since: bytes | None) -> bool:
    if if_none_match is not None:  # it wins over If-Modified-Since (RFC 9110 13.2.2)
        tags = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
        return entry.etag in tags or b"*" in tags
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since.decode("latin-1")).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return entry.modified <= since
    return False


def make_entry(rendered: Rendered, version: str, lifetime: float, previous: Entry | None) -> Entry:
    etag = b'"' + hashlib.blake2b(rendered.body, digest_size=12).hexdigest().encode("ascii") + b'"'
    # the same bytes again (re-rendered after the lifetime or a quiet move): the same Last-Modified
    # an HTTP date for caches, which run on wall time (not the campaign's injectable clock)
    modified = (previous.modified if previous is not None and previous.etag == etag
                else float(int(clock.wall_now().timestamp())))
    validators: Headers = [(b"etag", etag), (b"last-modified", formatdate(modified, usegmt=True).encode("ascii")),
                           (b"cache-control", PUBLIC_CACHE_CONTROL), (b"vary", b"Cookie")]
    kept = [(n, v) for n, v in rendered.headers if n.lower() not in _OWN_HEADERS]
    full = [*kept, (b"content-length", str(len(rendered.body)).encode("ascii")), *validators]
    now = clock.now()
    return Entry(version, now, now + timedelta(seconds=lifetime), etag, modified, full, validators, rendered.body)


def storable(rendered: Rendered) -> bool:
    return rendered.status == 200 and not any(n.lower() == b"set-cookie" for n, _ in rendered.headers)


class PageCache:
    """Pure ASGI, outermost of the app's own layers: a hit never reaches admission or a thread."""

    def __init__(self, app: ASGIApp, *, store: Callable[[], VersionStore], lifetime: float,
                 quiet_lifetime: float) -> None:
        self.app = app
        self.store = store
        self.lifetime = lifetime
        self.quiet = quiet_lifetime
        self.lifetimes = {path: lifetime if path in CLOCK_PATHS else quiet_lifetime for path in PUBLIC_PATHS}
        self._entries: dict[str, Entry] = {}
        self._rendering: dict[str, asyncio.Future[Entry | None]] = {}
        self._background: set[asyncio.Task[Entry | None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        if not is_public(scope["path"]) or self.lifetime <= 0:
            await self.app(scope, receive, send)
            return
        cookie, if_none_match, if_modified_since = _header_values(scope)
        if is_private(cookie):
            await self.app(scope, receive, _private(send))
            return
        entry = await self._fresh(scope, receive, send)
        if entry is None:  # answered by the application itself (not storable, or no version)
            return
        if not_modified(entry, if_none_match, if_modified_since):
            await send({"type": "http.response.start", "status": 304, "headers": entry.not_modified})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": entry.full})
        await send({"type": "http.response.body", "body": entry.body})

    async def _fresh(self, scope: Scope, receive: Receive, send: Send) -> Entry | None:
        """The entry to answer from, rendered if need be; None when the application answered."""
        path = scope["path"]
        version = await self.store().current()
        if version is None:
            await self.app(scope, receive, send)
            return None
        entry = self._entries.get(path)
        if entry is not None and entry.version == version:
            now = clock.now()
            if entry.rendered_at <= now < entry.expires:
                return entry
            if entry.rendered_at <= now < entry.expires + (entry.expires - entry.rendered_at):
                # only its lifetime is over (nothing was committed): answer from it once more while
                # one render runs in the background, so the crowd never queues behind the clock
                self._refresh_soon(scope, version, entry)
                return entry
        pending = self._rendering.get(path)
        if pending is not None:
            # somebody renders this page now; if that began before the version we read, it
            # may show the older state: then render again ourselves
            joined = await asyncio.shield(pending)
            if joined is not None and joined.version == version:
                return joined
            await self.app(scope, receive, send)
            return None
        return await self._render(scope, receive, send, version, entry)

    def _refresh_soon(self, scope: Scope, version: str, entry: Entry) -> None:
        if scope["path"] in self._rendering:
            return

        async def nowhere(message: Message) -> None:
            pass

        task = asyncio.ensure_future(self._render(scope, _no_body, nowhere, version, entry))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _render(self, scope: Scope, receive: Receive, send: Send, version: str,
                      previous: Entry | None) -> Entry | None:
        path = scope["path"]
        future: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
        self._rendering[path] = future
        entry: Entry | None = None
        try:
            rendered = await _capture(self.app, _plain(scope), receive)
            if storable(rendered):
                lifetime = self.lifetimes.get(path, self.quiet)  # a candidate's page: a quiet one
                entry = self._entries[path] = make_entry(rendered, version, lifetime, previous)
            else:
                await _replay(rendered, send)
        finally:
            del self._rendering[path]
            future.set_result(entry)
        return entry


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _plain(scope: Scope) -> Scope:
    """The request as anyone would make it: no validators, no cookies (none of ours are on it)."""
    keep = [(n, v) for n, v in scope["headers"] if n not in (b"if-none-match", b"if-modified-since", b"cookie")]
    return {**scope, "headers": keep, "query_string": b""}


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> Rendered:
    rendered = Rendered(500, [], b"")
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            rendered.status = message["status"]
            rendered.headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    rendered.body = b"".join(chunks)
    return rendered


async def _replay(rendered: Rendered, send: Send) -> None:
    await send({"type": "http.response.start", "status": rendered.status, "headers": rendered.headers})
    await send({"type": "http.response.body", "body": rendered.body})


def _private(send: Send) -> Send:
    """A page rendered for one person: no shared cache may keep it."""

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(n, v) for n, v in message.get("headers", ()) if bytes(n).lower() != b"cache-control"]
            message["headers"] = [*headers, (b"cache-control", PRIVATE_CACHE_CONTROL), (b"vary", b"Cookie")]
        await send(message)

    return sending


def _without_body(send: Send) -> Send:
    """HEAD: the GET's status and headers (Content-Length included), no body."""

    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body"):
                return
            message = {"type": "http.response.body", "body": b""}
        await send(message)

    return sending
