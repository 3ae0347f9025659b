"""A real SMTP server (aiosmtpd on 127.0.0.1, in a thread) that records what arrives and can be
told to misbehave; the mail listener installed for every test of this package."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from config.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _every_test_mails(mail_listener: None) -> None:
    """Every test here sees the transition mails (``mail_listener``, tests/conftest.py)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Arrived:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class Recorder:
    """The server's behaviour: scripted answers to DATA, refused recipients, dropped
    connections, slowness. Everything accepted lands in ``arrived``."""

    def __init__(self) -> None:
        self.arrived: list[Arrived] = []
        self.data_replies: list[str] = []  # answered (in order) instead of accepting
        self.refuse: dict[str, str] = {}  # recipient -> answer to RCPT
        self.drop_at: set[int] = set()  # DATA call numbers (1-based) at which to cut the line
        self.delay = 0.0
        self.data_calls = 0
        self.connections = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_calls += 1
            call = self.data_calls
        if self.delay:
            await asyncio.sleep(self.delay)
        if call in self.drop_at:
            server.transport.abort()  # the line goes dead before the server accepts
            return "451 4.3.0 connection lost"
        if self.data_replies:
            return self.data_replies.pop(0)
        with self.lock:
            self.arrived.append(Arrived(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 OK queued"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [a.message_id for a in self.arrived]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.recorder = Recorder()
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def arrived(self) -> list[Arrived]:
        return self.recorder.arrived


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def settings_for(port: int, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_timeout": 10.0,
        "mail_retry_base_seconds": 60.0,
        "mail_retry_max_seconds": 3600.0,
        "mail_max_attempts": 5,
        "mail_lease_seconds": 300.0,
        "mail_batch_size": 50,
    }
    values.update(changes)
    return get_settings().model_copy(update=values)


@pytest.fixture
def mail_settings(smtp_server: SmtpServer) -> Settings:
    return settings_for(smtp_server.port)
