"""Instants as people in the campaign read them: Beijing wall-clock text.

Domain errors quote deadlines in this form (the notice states them in Beijing time), and the web
pages show every instant the same way, so the one formatter lives below both."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_text(value: datetime | None, seconds: bool = False) -> str:
    """An instant as Beijing wall-clock text, e.g. 2021年5月31日 18:00."""
    if value is None:
        return ""
    local = value.astimezone(BEIJING)
    fmt = "%H:%M:%S" if seconds else "%H:%M"
    return f"{local.year}年{local.month}月{local.day}日 {local.strftime(fmt)}"
