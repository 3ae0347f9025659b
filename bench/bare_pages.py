"""The baseline of bench/pages_bench.py: a bare FastAPI app answering each public path with the
very bytes (and content type) the real app answered, from an ``async def`` endpoint: the least
FastAPI can do for a page. ``BARE_PAGES`` names the JSON file {path: [content type, body]}."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Response

app = FastAPI()
PAGES: dict[str, list[str]] = json.loads(Path(os.environ["BARE_PAGES"]).read_text(encoding="utf-8")) \
    if os.environ.get("BARE_PAGES") else {}


def endpoint(kind: str, body: bytes) -> Callable[[], Awaitable[Response]]:
    async def page() -> Response:
        return Response(body, media_type=kind)

    return page


for path, (kind, text) in PAGES.items():
    app.add_api_route(path, endpoint(kind, text.encode("utf-8")), methods=["GET"])


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
