"""Domain errors. Services raise these; routes and the CLI map them to answers."""

from __future__ import annotations

from datetime import datetime


class JingongError(Exception):
    """Base of every error a user can act on. ``str()`` is one clear line."""

    #: Chinese text for public pages and emails; English stays in ``str()``.
    message_zh: str | None = None

    def __init__(self, message: str, *, message_zh: str | None = None) -> None:
        super().__init__(message)
        if message_zh is not None:
            self.message_zh = message_zh


class NotFound(JingongError):
    pass


class ValidationFailed(JingongError):
    """Input that cannot be accepted as it is (names the field)."""


class InvalidTransition(JingongError):
    """The event does not apply to the nomination's current state."""


class GuardFailed(JingongError):
    """The event applies to the state, but a rule of the campaign refuses it."""


class DeadlinePassed(GuardFailed):
    def __init__(self, message: str, *, deadline: datetime, message_zh: str | None = None) -> None:
        super().__init__(message, message_zh=message_zh)
        self.deadline = deadline


class ConcurrentChange(JingongError):
    """Somebody else changed the nomination first (optimistic version check lost)."""


class NotAuthenticated(JingongError):
    """The caller has not proved who they are (a voter without a valid token)."""


class Forbidden(JingongError):
    """The caller is known, but their role (or their own unit's stake) does not allow the act."""

    def __init__(self, message: str, message_zh: str | None = None) -> None:
        super().__init__(message, message_zh=message_zh)


class Conflict(JingongError):
    """The request repeats something that may happen only once (a second vote the same day)."""


class TooLarge(JingongError):
    """What was sent is larger than the campaign accepts (a file over its size limit)."""


class UnsupportedType(JingongError):
    """A file whose content, as sniffed from its bytes, is not of a kind accepted here."""


class ConfigError(JingongError):
    """The campaign file or the settings are wrong."""


class RateLimited(JingongError):
    """Too many requests (or a locked identity): try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int, message_zh: str | None = None) -> None:
        super().__init__(message, message_zh=message_zh)
        self.retry_after = max(1, retry_after)


class DatabaseBusy(JingongError):
    """The database could not take the write in time (a crowd far beyond what it can serve):
    nothing was written; try again shortly."""

    retry_after = 5
    message_zh = "系统繁忙，本次操作未执行，请稍后重试"
