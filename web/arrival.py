"""When a request arrived: the instant every clock-enforced edge judges (``core.clock.received``).

"Received" means: the server holds the whole request, headers and body. The stamp is taken in
the event loop, before the request waits for anything (a worker thread, a database connection,
SQLite's write lock), so a crowd that arrives at 17:59:59 is judged at 17:59:59 however long it
then queues. A client cannot stretch it: a body that trickles in for minutes is stamped when its
last byte arrives, not when its first did. Small bodies (forms, JSON) are read here at once;
a large upload is stamped by the receive call that returns its last chunk.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import clock

#: bodies up to this size are read in full before the app sees the request
PREREAD_BYTES = 256 * 1024


class ArrivalStamp:
    """Pure ASGI (no per-request task): the outermost layer of the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _small(scope):
            await self._read_then_serve(scope, receive, send)
        else:
            await self._serve_streaming(scope, receive, send)

    async def _read_then_serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        first: list[Message] = []
        while True:
            message = await receive()
            first.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        token = clock.arrived(clock.now())
        pending = iter(first)

        async def replay() -> Message:
            return next(pending, None) or await receive()

        try:
            await self.app(scope, replay, send)
        finally:
            clock.forget_arrival(token)

    async def _serve_streaming(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = clock.arrived(clock.now())

        async def stamping() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body"):
                clock.arrived(clock.now())  # the last byte is in: this is the arrival
            return message

        try:
            await self.app(scope, stamping, send)
        finally:
            clock.forget_arrival(token)


def _small(scope: Scope) -> bool:
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return False
        elif name == b"transfer-encoding":
            chunked = True
    if chunked:
        return False
    return length is None or length <= PREREAD_BYTES
