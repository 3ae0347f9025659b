"""The client's address behind trusted reverse proxies.

``X-Forwarded-For`` is read only when the peer is a trusted proxy (FORWARDED_ALLOW_IPS: addresses
or networks). Each proxy appends the address it saw, so the list is walked from the right and the
first address no trusted proxy stands for is the client (what a client writes further left is
its own claim and is never taken). A peer that is not trusted: the header is ignored. The
app does this itself (not uvicorn's proxy_headers), so every server and the tests see the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str | None) -> list[Network]:
    """``"10.0.0.5, 10.1.0.0/24"`` as networks; ``*`` is every address. Raises ValueError."""
    found: list[Network] = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item == "*":
            found += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
        else:
            found.append(ipaddress.ip_network(item, strict=False))
    return found


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("["):  # [v6]:port
        value = value[1:value.find("]")] if "]" in value else value
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = list(networks)

    def trusts(self, host: str | None) -> bool:
        address = _address(host) if host else None
        return address is not None and any(address in net for net in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client behind ``peer`` given the X-Forwarded-For values (in order received)."""
        if not self.trusts(peer):
            return peer
        hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                # garbage where a proxy should have written an address: stop at the last good one
                return peer
            if not any(address in net for net in self.networks):
                return str(address)
            peer = str(address)
        return peer  # every hop is a trusted proxy: the left-most of them is the client


class ForwardedFor:
    """ASGI middleware: ``scope["client"]`` (and the scheme, from X-Forwarded-Proto) as the trusted
    proxies tell them."""

    def __init__(self, app: ASGIApp, trusted: str | None) -> None:
        self.app = app
        self.proxies = TrustedProxies(parse_networks(trusted))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.proxies.networks:
            client = scope.get("client")
            if client and self.proxies.trusts(client[0]):
                forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
                if forwarded:
                    scope["client"] = (self.proxies.client(client[0], forwarded), 0)
                proto = next((v.decode("latin-1").strip() for k, v in scope["headers"]
                              if k == b"x-forwarded-proto"), None)
                if proto in ("http", "https") and scope["type"] == "http":
                    scope["scheme"] = proto
        await self.app(scope, receive, send)
