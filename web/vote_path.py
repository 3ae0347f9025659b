"""``POST /api/votes`` answered in front of the app's stack: the crowd's one request, at the cost of
a bare endpoint plus the vote itself.

A vote needs none of what sits between this layer and the route: no session (the voter's token is
its own signed header or cookie), no admission slot and no writer turn (the vote lane queues in the
event loop, and the SQLite group writer takes the turn per batch), no routing, no dependency
solving. Measured in bench/vote_bench.py, that stack cost the vote path about as much CPU as the
vote itself. So a well-formed vote (``Content-Type: application/json``, a body that is exactly
``{"nomination_id": <id>}``) is cast here, by the same ``web.votes.cast_over_http`` the route
calls, and refused in the same shape (``{"detail", "detail_zh"}``, the same status, Retry-After).
Anything else (another body, another content type, no vote lane on this loop) goes on to the
FastAPI route, which answers it as it always did: a 422 for a malformed body is FastAPI's own.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import DatabaseBusy, JingongError, RateLimited
from web.errors import message_zh, status_of
from web.schemas import MAX_ID
from web.votes import cast_over_http

PATH = "/api/votes"
JSON_TYPE = b"application/json"


class VotePath:
    """Pure ASGI, inside ``ArrivalStamp`` (the vote is judged by its arrival) and outside
    ``Admission``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        lane = scope["app"].state.vote_lane
        if lane is None or not lane.serves_this_loop():
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive)
        nomination_id = _nomination_of(scope, body) if messages[-1]["type"] == "http.request" else None
        if nomination_id is None:
            pending = iter(messages)

            async def replay() -> Message:
                return next(pending, None) or await receive()

            await self.app(scope, replay, send)
            return
        await _answer(send, *await _vote(Request(scope, receive), nomination_id))


async def _vote(request: Request, nomination_id: int) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
    try:
        return 201, await cast_over_http(request, nomination_id), []
    except JingongError as exc:  # as web.errors answers it under /api
        extra = [(b"retry-after", str(exc.retry_after).encode())] if isinstance(exc, RateLimited | DatabaseBusy) else []
        return status_of(exc), {"detail": str(exc), "detail_zh": message_zh(exc)}, extra


async def _read(receive: Receive) -> tuple[list[Message], bytes]:
    """Every message up to the body's end (``ArrivalStamp`` has read a small body already)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return messages, b"".join(chunks)


def _nomination_of(scope: Scope, body: bytes) -> int | None:
    """The id of a body that is exactly ``{"nomination_id": <id in range>}`` sent as JSON; None for
    anything else (the route decides about it)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            if value.split(b";", 1)[0].strip().lower() != JSON_TYPE:
                return None
            break
    else:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if type(data) is not dict or len(data) != 1:
        return None
    value = data.get("nomination_id")
    if type(value) is not int or not 1 <= value <= MAX_ID:
        return None
    return value


async def _answer(send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", JSON_TYPE), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
