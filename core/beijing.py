"""Instants as people in the campaign read them: Beijing wall-clock text.

Domain errors quote deadlines in this form (the notice states them in Beijing time), and the web
pages show every instant the same way, so the one formatter lives below both."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_text(value: datetime | None, seconds: bool = False) -> str:
    """An instant as Beijing wall-clock text, e.g. 2021年5月31日 18:00."""
    if value is None:
        return ""
    local = value.astimezone(BEIJING)
    fmt = "%H:%M:%S" if seconds else "%H:%M"
    return f"{local.year}年{local.month}月{local.day}日 {local.strftime(fmt)}"


def beijing_until_text(value: datetime | None) -> str:
    """The end of a period as people write it: an end at midnight is the previous day's 24:00
    (an instant at 7月11日 00:00 reads 2021年7月10日 24:00); any other end as ``beijing_text``."""
    if value is None:
        return ""
    local = value.astimezone(BEIJING)
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        day = (local - timedelta(days=1)).date()
        return f"{day.year}年{day.month}月{day.day}日 24:00"
    return beijing_text(value)
