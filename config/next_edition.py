"""Next year's campaign file from this year's (``jingong campaign new``).

The edition and the title advance, and every instant of the calendar moves one year, as a date
(the promotion stage ending on 1 January 2022 ends on 1 January 2023; 29 February becomes
28 February). A plain search-and-replace of the year would not do: it misses the windows that
cross a new year. Comments and layout survive (tomlkit). The result is checked by the loader
before it is written.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from typing import Any

import tomlkit

from config.campaign import CampaignSpec, parse_campaign

_DIGITS = "零一二三四五六七八九"
_YEAR = re.compile(r"(?<!\d)(19|20)(\d\d)(?=年|-|$)")


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 13 → 十三, 24 → 二十四 (editions are counted this way in titles)."""
    if not 0 < n < 100:
        raise ValueError(f"edition {n} out of range 1–99")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "")


def one_year_later(value: datetime | date) -> Any:
    try:
        return value.replace(year=value.year + 1)
    except ValueError:  # 29 February
        return value.replace(year=value.year + 1, day=28)


def _next_years(text: str) -> str:
    """Each year written in ``text`` (2021年, 2021-…) moved one year on."""
    return _YEAR.sub(lambda m: str(int(m.group(1) + m.group(2)) + 1), text)


def next_edition(source_text: str, source: str = "campaign") -> tuple[str, CampaignSpec]:
    """The next edition's campaign file (its text, and the loader's reading of it)."""
    current = parse_campaign(tomllib.loads(source_text), source)
    doc = tomlkit.parse(source_text)
    new_edition = current.edition + 1
    doc["edition"] = new_edition
    doc["slug"] = _next_years(current.slug) if _YEAR.search(current.slug) else f"{current.slug}-{new_edition}"
    doc["name"] = _next_years(current.name.replace(f"第{chinese_number(current.edition)}届",
                                                   f"第{chinese_number(new_edition)}届"))
    # a new notice is issued for the new edition: its number is the office's to fill in
    doc["notice_ref"] = ""
    if "notice_file" in doc:  # and its text: the last edition's notice is not offered for this one
        doc["notice_file"] = ""
    if current.issued_on:
        doc["issued_on"] = one_year_later(date.fromisoformat(current.issued_on)).isoformat()
    for stage in doc["stages"]:
        stage["opens"] = one_year_later(stage["opens"])
        stage["closes"] = one_year_later(stage["closes"])
        if "description" in stage:
            stage["description"] = _next_years(str(stage["description"]))
    publicity = doc.get("publicity")
    if publicity is not None and "decision_expected" in publicity:
        publicity["decision_expected"] = one_year_later(publicity["decision_expected"])
    rules = doc.get("rules")
    if rules is not None and "prior_editions" in rules:
        # unset: every earlier edition the service knows, this one included once it commends
        del rules["prior_editions"]
    text = (f"# Written by `jingong campaign new` from {source} (edition {current.edition}): check the\n"
            f"# calendar, the units and quotas, and fill in notice_ref once the notice is issued.\n"
            + tomlkit.dumps(doc))
    return text, parse_campaign(tomllib.loads(text), "the new campaign file")
