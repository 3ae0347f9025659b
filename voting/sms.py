"""Text messages to voters' phones. A real provider is a plug-in (``SMS_GATEWAY=pkg.module:factory``,
the factory gets the settings and returns an ``SmsGateway``); the embedded default prints the
message and appends it to ``data_dir/sms.log``."""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from pathlib import Path
from typing import Protocol

from config.settings import Settings, get_settings
from core import clock
from core.errors import ConfigError

log = logging.getLogger(__name__)


class SmsGateway(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class ConsoleSms:
    """Writes each message to the log and to a file; keeps the last ones for tests and demos."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> None:
        with self._lock:
            self.sent = [*self.sent[-99:], (phone, text)]
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(f"{clock.now().isoformat()}\t{phone}\t{text}\n")
        log.warning("SMS to %s: %s", phone, text)


@functools.cache
def _gateway(spec: str, data_dir: str) -> SmsGateway:
    if spec == "console":
        return ConsoleSms(Path(data_dir) / "sms.log")
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr or "gateway")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"SMS_GATEWAY={spec!r} cannot be loaded ({exc}); use 'console' or 'module:factory'") from None
    gateway: SmsGateway = factory(get_settings())
    return gateway


def get_gateway(settings: Settings | None = None) -> SmsGateway:
    settings = settings or get_settings()
    return _gateway(settings.sms_gateway, str(settings.data_dir))
