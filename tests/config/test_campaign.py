"""The campaign file: the 2021 calendar as data, and clear refusals of bad files."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.campaign import DEFAULT_CAMPAIGN_FILE, StageName, load_campaign, parse_campaign
from core.errors import ConfigError


def raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))


def stage(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["stages"] if s["name"] == name)


def test_2021_calendar_is_the_notice():
    spec = load_campaign()
    nomination = spec.stage(StageName.NOMINATION)
    assert nomination.closes == datetime(2021, 5, 31, 10, 0, tzinfo=UTC)  # 18:00 Beijing
    assert spec.to_local(nomination.closes).strftime("%Y-%m-%d %H:%M") == "2021-05-31 18:00"
    voting = spec.stage(StageName.VOTING)
    assert spec.to_local(voting.opens).day == 1 and spec.to_local(voting.closes).day == 11
    review = spec.stage(StageName.REVIEW)
    assert spec.to_local(review.opens).day == 21
    assert (spec.awards.main, spec.awards.finalist) == (10, 10)
    assert (spec.shortlist.min, spec.shortlist.max) == (20, 25)
    assert len(spec.priority_conditions) == 7
    quotas = {u.name: u.quota for u in spec.units}
    assert quotas["区人力社保局"] == 3 and quotas["双福工业发展中心"] == 5 and quotas["几江街道"] == 2
    assert "高级技师" in spec.technical_grades and "初级职称" in spec.technical_grades
    assert [c.phone for c in spec.office.contacts] == ["47535232", "81220561"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(timezone="Asia/Jiangjin"), "timezone: unknown time zone 'Asia/Jiangjin'"),
        (lambda d: stage(d, "voting").update(closes=stage(d, "voting")["opens"]), "stages.voting: closes"),
        (lambda d: stage(d, "screening").update(opens=datetime(2021, 5, 20)), "windows overlap"),
        (lambda d: d.update(stages=[s for s in d["stages"] if s["name"] != "review"]), "missing stage(s) review"),
        (lambda d: d.update(awards={"main": 15, "finalist": 10}), "do not fit a shortlist"),
        (lambda d: d.update(shortlist={"min": 25, "max": 20}), "min 25 is greater than max 20"),
        (lambda d: d.pop("units"), "units: Field required"),
        (lambda d: d["units"].append(dict(d["units"][0])), "units: listed twice: 区人力社保局"),
        (lambda d: d.update(surprise=1), "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_campaign_is_refused_naming_the_problem(mutate, expected):
    data = raw()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_campaign(data, "bad.toml")
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_unreadable_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="campaign file not found"):
        load_campaign(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("slug = [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_campaign(broken)


def test_next_edition_is_a_new_file(tmp_path: Path):
    text = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8")
    text = text.replace("2022-01-01", "2023-01-01").replace("2021-", "2022-")
    text = text.replace('slug = "jingong-2021"', 'slug = "jingong-2022"').replace("edition = 3", "edition = 4")
    path = tmp_path / "jingong-2022.toml"
    path.write_text(text, encoding="utf-8")
    spec = load_campaign(path)
    assert spec.slug == "jingong-2022"
    assert spec.to_local(spec.stage(StageName.NOMINATION).closes).strftime("%Y-%m-%d %H:%M") == "2022-05-31 18:00"
