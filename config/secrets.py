"""The service's one secret (signing sessions, CSRF tokens, voter tokens) and the keyed hashes made
with it, so that identities and addresses are stored only as HMACs."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from config.settings import Settings, get_settings


def secret_key(settings: Settings) -> str:
    """SECRET_KEY, or one generated on first start and kept in ``data_dir/secret_key`` (0600),
    so sessions survive a restart."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 32:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)
    return value


_peppers: dict[tuple[str | None, str], bytes] = {}


def pepper(settings: Settings | None = None) -> bytes:
    """The key of every hash and token: the service's one secret (SECRET_KEY, or the key generated
    on first start under the data directory)."""
    settings = settings or get_settings()
    key = (settings.secret_key, str(settings.data_dir))
    found = _peppers.get(key)
    if found is None:
        found = _peppers[key] = secret_key(settings).encode("utf-8")
    return found


def keyed_hash(value: str, settings: Settings | None) -> str:
    return hmac.new(pepper(settings), value.encode("utf-8"), hashlib.sha256).hexdigest()[:40]
