"""The background sender: a thread in the web process that drains the outbox whenever a commit
queued mail (woken through ``notifications.wake``) and at least every poll interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from config.settings import get_settings
from notifications import wake
from notifications.drain import drain
from notifications.transports import MailTransport, transport_from_settings

log = logging.getLogger("jingong.mail")


class SenderHandle:
    """A thread that drains the outbox whenever a commit queued mail (``wake.wake_senders``)
    and at least every ``interval`` seconds. ``shutdown()`` stops it between two mails."""

    def __init__(self, engine: Engine, transport_factory: Callable[[], MailTransport], interval: float) -> None:
        self.engine, self.transport_factory, self.interval = engine, transport_factory, interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.passes = 0
        self._thread = threading.Thread(target=self._run, name="jingong-mail-sender", daemon=True)

    def start(self) -> SenderHandle:
        wake.add_waker(self.wake)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def shutdown(self, timeout: float = 30.0) -> None:
        wake.remove_waker(self.wake)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                drain(self.engine, self.transport_factory(), should_stop=self._stop.is_set)
            except Exception:  # keep the thread alive: the next pass may succeed
                log.exception("mail sender pass failed")
            self.passes += 1
            self._wake.wait(self.interval)


def start_sender(
    engine: Engine, *, transport_factory: Callable[[], MailTransport] | None = None,
    interval: float | None = None,
) -> SenderHandle:
    """Start the background sender (the web app's lifespan calls this and ``.shutdown()``)."""
    settings = get_settings()
    factory = transport_factory or (lambda: transport_from_settings(get_settings()))
    return SenderHandle(engine, factory, interval or settings.mail_poll_seconds).start()
