"""Security headers on every response: a pure ASGI wrapper around the whole application.

The header list is built once per app from the settings; per request the wrapper only appends it
to the ``http.response.start`` message, so the vote path pays one list concatenation. It wraps the
outermost layer (``JingongApp.build_middleware_stack``), outside Starlette's ``ServerErrorMiddleware``,
so even the bare 500 answer of an unexpected error carries the headers.

Pages carry no inline script or style (``tests/web/test_headers.py`` scans the templates), so the
policy needs neither ``'unsafe-inline'`` nor nonces. The OpenAPI pages (``/docs``, ``/redoc``) are
FastAPI's own HTML: an inline script that loads Swagger UI or ReDoc from a CDN. They get a policy
of their own that allows exactly that; they show no stored data and take no input of their own,
so an inline allowance there has nothing to inject into. They are for developers (the servers of
the office have no internet, so those pages stay blank there; ``/openapi.json`` is what matters).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

#: the pages: only our own files, no inline script or style, no plugins, never framed
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: FastAPI's /docs and /redoc: its inline bootstrap script and the CDN it loads Swagger UI from
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {DOCS_CDN}; style-src 'self' 'unsafe-inline' "
    f"{DOCS_CDN} https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
#: a mail's HTML part in the outbox preview (web/office.py): the mail's inline styles, nothing
#: else (no script, no fetch, a sandbox of its own), framed only by our own preview page
MAIL_BODY_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
MAIL_BODY_PATH = re.compile(r"/committee/mail/[0-9]+/body")
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=()"
#: one year; no includeSubDomains: the office's other hosts under the same domain are not ours to decide
HSTS = "max-age=31536000"

Headers = list[tuple[bytes, bytes]]


def security_headers(*, https: bool, content_security_policy: str = CONTENT_SECURITY_POLICY,
                     frame_options: str = "DENY") -> Headers:
    """The headers every answer carries; Strict-Transport-Security only when served over https."""
    pairs = [
        ("content-security-policy", content_security_policy),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),  # the applicant's /status/{token} link never leaves in a Referer
        ("x-frame-options", frame_options),
        ("permissions-policy", PERMISSIONS_POLICY),
    ]
    if https:
        pairs.append(("strict-transport-security", HSTS))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


class SecurityHeaders:
    """Appends the precomputed headers to every HTTP answer of ``app``."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)
        self.docs_headers = security_headers(https=https, content_security_policy=DOCS_CONTENT_SECURITY_POLICY)
        self.mail_body_headers = security_headers(
            https=https, content_security_policy=MAIL_BODY_CONTENT_SECURITY_POLICY, frame_options="SAMEORIGIN")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = (self.docs_headers if path in DOCS_PATHS
                 else self.mail_body_headers if path.startswith("/committee/mail/") and MAIL_BODY_PATH.fullmatch(path)
                 else self.headers)

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class JingongApp(FastAPI):
    """FastAPI with the security headers outside every other layer (see the module's docstring)."""

    https = False

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), https=self.https)
