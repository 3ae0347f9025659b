"""X-Forwarded-For only from the trusted proxies (FORWARDED_ALLOW_IPS), read right to left."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from config.settings import Settings
from web.app import create_app
from web.forwarded import TrustedProxies, parse_networks

PROXIES = TrustedProxies(parse_networks("10.0.0.5, 10.1.0.0/24"))


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),            # an untrusted peer: the header is ignored
    ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),              # the proxy's word
    ("10.0.0.5", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),     # what the client wrote itself is not taken
    ("10.0.0.5", ["198.51.100.1, 10.1.0.7"], "198.51.100.1"),    # a second proxy inside a trusted network
    ("10.0.0.5", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),   # two header lines, in order
    ("10.0.0.5", ["10.1.0.8, 10.1.0.7"], "10.1.0.8"),            # every hop a proxy: the left-most
    ("10.0.0.5", ["not-an-address"], "10.0.0.5"),                # garbage: the last address known
    ("10.1.0.200", ["2001:db8::1"], "2001:db8::1"),
    ("10.0.0.6", ["198.51.100.1"], "10.0.0.6"),                  # next to the proxy but not it
])
def test_the_client_is_the_right_most_untrusted_address(peer: str, header: list[str], client: str) -> None:
    assert PROXIES.client(peer, header) == client


def test_a_setting_that_is_no_address_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
        Settings.model_validate({"FORWARDED_ALLOW_IPS": "10.0.0.5, proxy.local"})
    assert Settings.model_validate({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, ::1"}).forwarded_allow_ips


def _logins(engine: Engine, settings: Settings, peer: str, forwarded: list[str]) -> list[int]:
    client = TestClient(create_app(engine, settings, background=False, create_admin=False), client=(peer, 50000))
    answers: list[Any] = [client.post("/api/session", json={"username": f"n{i}", "password": "wrong-password"},
                                      headers={"X-Forwarded-For": f} if f else {})
                          for i, f in enumerate(forwarded)]
    return [a.status_code for a in answers]


@pytest.fixture
def limited(web_settings: Settings) -> Settings:
    return web_settings.model_copy(update={"login_rate_per_address_minute": 2,
                                           "forwarded_allow_ips": "10.0.0.0/24"})


def test_through_a_trusted_proxy_each_client_has_its_own_limit(engine: Engine, campaign: Any,
                                                               limited: Settings) -> None:
    statuses = _logins(engine, limited, "10.0.0.5", [f"198.51.100.{i}" for i in range(5)])
    assert 429 not in statuses
    # one client behind the proxy, forging a different left part each time, is still one client
    statuses = _logins(engine, limited, "10.0.0.5", [f"6.6.6.{i}, 198.51.100.77" for i in range(3)])
    assert statuses[-1] == 429 and 429 not in statuses[:2]


def test_from_an_untrusted_peer_the_header_changes_nothing(engine: Engine, campaign: Any,
                                                          limited: Settings) -> None:
    statuses = _logins(engine, limited, "203.0.113.9", [f"198.51.100.{i}" for i in range(3)])
    assert statuses[-1] == 429 and 429 not in statuses[:2]


def test_unset_the_header_is_ignored_even_from_loopback(engine: Engine, campaign: Any,
                                                       web_settings: Settings) -> None:
    settings = web_settings.model_copy(update={"login_rate_per_address_minute": 2})
    statuses = _logins(engine, settings, "127.0.0.1", [f"198.51.100.{i}" for i in range(3)])
    assert statuses[-1] == 429
