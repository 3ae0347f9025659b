"""``GET`` of one Redis key from the event loop, as cheaply as Python allows.

The public pages ask for the public version on every request (``storage/public_version.py``), so
the client's own cost is the page's cost: ``redis.asyncio`` spends about 115 µs of CPU per ``GET``
here, this one connection speaking RESP directly about 23 µs. It does only that: connect (``AUTH``,
``SELECT`` from the URL), send ``GET``, read one bulk reply; one request at a time (its caller
batches). Any failure closes the connection and raises ``OSError``; the next call connects again.
``rediss://`` (TLS) and ``unix://`` URLs use ``redis.asyncio`` instead (``for_url``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

TIMEOUT = 1.0


def command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class RawGet:
    def __init__(self, url: str, key: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 6379
        self.hello: list[bytes] = []
        if parsed.password:
            user = [unquote(parsed.username).encode()] if parsed.username else []
            self.hello.append(command(b"AUTH", *user, unquote(parsed.password).encode()))
        db = parsed.path.strip("/")
        if db and db != "0":
            self.hello.append(command(b"SELECT", db.encode()))
        self.request = command(b"GET", key.encode())
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), TIMEOUT)
        for hello in self.hello:
            writer.write(hello)
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            if not line.startswith(b"+"):
                writer.close()
                raise OSError(f"redis refused the connection's setup: {line.decode(errors='replace').strip()}")
        return reader, writer

    async def get(self) -> bytes | None:
        try:
            if self._streams is None:
                self._streams = await self._connect()
            reader, writer = self._streams
            writer.write(self.request)
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            if not line.startswith(b"$"):
                raise OSError(f"redis answered {line.decode(errors='replace').strip() or 'nothing'}")
            size = int(line[1:])
            if size < 0:
                return None
            return (await asyncio.wait_for(reader.readexactly(size + 2), TIMEOUT))[:-2]
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self.close()
            raise OSError(f"redis GET failed: {exc}") from exc

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def for_url(url: str, key: str) -> Callable[[], Awaitable[bytes | str | None]]:
    """An awaitable ``GET key`` for this URL: the raw client for ``redis://``, else redis.asyncio."""
    if urlsplit(url).scheme == "redis":
        return RawGet(url, key).get
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)

    async def get() -> bytes | str | None:
        value: bytes | str | None = await client.get(key)
        return value

    return get
