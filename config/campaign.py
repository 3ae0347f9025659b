"""The campaign file: one edition of the award as data (calendar, counts, quotas, rules).

``load_campaign(path)`` validates the file and returns a ``CampaignSpec`` with every window as
an aware UTC instant. A bad file raises ``ConfigError`` with one line naming the field.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CAMPAIGN_FILE = CONFIG_DIR / "jingong-2021.toml"


class StageName(StrEnum):
    PUBLICITY = "publicity"
    NOMINATION = "nomination"
    SCREENING = "screening"
    VOTING = "voting"
    REVIEW = "review"
    NOTICE = "notice"
    COMMENDATION = "commendation"
    PROMOTION = "promotion"


STAGE_ORDER: tuple[StageName, ...] = tuple(StageName)


class Track(StrEnum):
    MAIN = "main"  # 津工精匠
    FINALIST = "finalist"  # 津工精匠入围奖


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageSpec(_Strict):
    name: StageName
    title: str = Field(min_length=1)
    opens: datetime
    closes: datetime
    #: another stage this one may overlap (promotion runs beside commendation in the notice)
    concurrent_with: StageName | None = None
    description: str = ""


class AwardCounts(_Strict):
    main: int = Field(ge=1)
    finalist: int = Field(ge=0)

    def for_track(self, track: Track) -> int:
        return self.main if track is Track.MAIN else self.finalist


class Range(_Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class UnitSpec(_Strict):
    """One nominating unit of the plan (附件1 推荐计划表), with its own quota and contact."""

    name: str = Field(min_length=1)
    category: str = Field(min_length=1)
    quota: int = Field(ge=0)
    #: the row of the plan it came from when the file lists a group ("各镇街"), else None
    group: str | None = None
    contact_person: str | None = None
    phone: str | None = None
    contact_email: str | None = None


def _refuse_towns_as_one_unit(data: dict[str, Any]) -> None:
    """A file whose plan has "各镇街" as one unit would give thirty towns one shared quota: refuse
    it with what to write instead. (Only files: a campaign stored before stays readable.)"""
    raw = data.get("units")
    for index, entry in enumerate(raw if isinstance(raw, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name.startswith("各") and name.endswith(("镇街", "街道", "镇")):
            raise ValueError(
                f"units.{index}: {name!r} stands for several units, each with its own quota: write "
                f'group = "{name}" and members = ["几江街道", ...] instead of name (one name per town '
                "or street; see config/jingong-2021.toml)"
            )


def expand_units(raw: Any) -> Any:
    """The file's ``[[units]]`` as one entry per unit: an entry with ``members = [...]`` (and
    ``group`` naming the plan's row) becomes one unit per member with the entry's category and
    quota each."""
    if not isinstance(raw, list):
        return raw
    out: list[Any] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or "members" not in entry:
            out.append(entry)
            continue
        members = entry["members"]
        if not isinstance(members, list) or not members or not all(isinstance(m, str) and m for m in members):
            raise ValueError(f"units.{index}.members: a non-empty list of unit names")
        rest = {k: v for k, v in entry.items() if k != "members"}
        if "name" in rest:
            raise ValueError(f"units.{index}: give either name or members, not both")
        for member in members:
            out.append({**rest, "name": member})
    return out


class PriorityCondition(_Strict):
    code: str = Field(min_length=1)
    text: str = Field(min_length=1)


class ReviewCriterion(_Strict):
    """One line of the review's scoring sheet (综合评审评分细则)."""

    code: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1)
    max_points: int = Field(ge=1, le=1000)
    weight: float = Field(default=1.0, gt=0)


class ReviewSpec(_Strict):
    #: empty: the review is decided without scores (the board shows no score column)
    criteria: list[ReviewCriterion] = Field(default_factory=list)

    @field_validator("criteria")
    @classmethod
    def _unique_codes(cls, value: list[ReviewCriterion]) -> list[ReviewCriterion]:
        codes = [c.code for c in value]
        if len(set(codes)) != len(codes):
            raise ValueError("codes must be unique")
        return value


class Contact(_Strict):
    organisation: str
    person: str
    phone: str


class Office(_Strict):
    name: str
    address: str
    email: str
    contacts: list[Contact] = Field(min_length=1)


class Rules(_Strict):
    #: editions whose winners may not be nominated again, and whose finalists may only enter
    #: the main track; unset: every earlier edition the service knows (its registry of awards,
    #: filled at each commendation and by ``jingong import-prior``)
    prior_editions: list[int] | None = None
    deeds_max_chars: int = Field(default=500, ge=1)
    #: extra time after a window closes during which submissions are still accepted (none)
    submission_grace_seconds: int = Field(default=0, ge=0)
    #: days before the nomination deadline at which drafts get a reminder
    reminder_days: list[int] = Field(default_factory=lambda: [7, 3, 1])
    #: hold decision mails of these stages until the office announces them
    hold_decisions_until_announced: list[StageName] = Field(
        default_factory=lambda: [StageName.SCREENING, StageName.REVIEW]
    )


class VotingRules(_Strict):
    votes_per_candidate_per_day: int = Field(default=1, ge=1)
    candidates_per_voter_per_day: int = Field(default=25, ge=1)
    show_counts_publicly: bool = False
    #: flag (never drop) more votes than this from one address / one network within a minute
    flag_votes_per_address_minute: int = Field(default=60, ge=1)
    flag_votes_per_network_minute: int = Field(default=200, ge=1)
    #: flag more new voters than this within a minute
    flag_new_voters_per_minute: int = Field(default=60, ge=1)


class CampaignSpec(_Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    award_name: str
    edition: int = Field(ge=1)
    timezone: str
    notice_ref: str = ""
    issued_on: str = ""
    #: the notice's text (a file beside the campaign file, or an absolute path): the public
    #: download of the notice and its attachments; unset: no notice to download
    notice_file: str = ""
    stages: list[StageSpec]
    awards: AwardCounts
    shortlist: Range
    units: list[UnitSpec] = Field(min_length=1)
    priority_conditions: list[PriorityCondition] = Field(min_length=1)
    technical_grades: list[str] = Field(min_length=1)
    office: Office
    rules: Rules = Field(default_factory=Rules)
    voting: VotingRules = Field(default_factory=VotingRules)
    review: ReviewSpec = Field(default_factory=ReviewSpec)
    publicity: Publicity = Field(default_factory=lambda: Publicity())

    @field_validator("units", mode="before")
    @classmethod
    def _expand_units(cls, value: Any) -> Any:
        return expand_units(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        zone = ZoneInfo(self.timezone)
        # Naive instants in the file are wall-clock times in the campaign's zone.
        stages = [
            s.model_copy(update={"opens": _to_utc(s.opens, zone), "closes": _to_utc(s.closes, zone)})
            for s in self.stages
        ]
        object.__setattr__(self, "stages", stages)
        names = [s.name for s in stages]
        missing = [n.value for n in STAGE_ORDER if n not in names]
        if missing:
            raise ValueError(f"stages: missing stage(s) {', '.join(missing)}")
        dupes = sorted({n.value for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stages: stage(s) listed twice: {', '.join(dupes)}")
        by_name = {s.name: s for s in stages}
        for s in stages:
            if s.closes <= s.opens:
                raise ValueError(
                    f"stages.{s.name}: closes ({_local(s.closes, zone)}) is not after "
                    f"opens ({_local(s.opens, zone)})"
                )
        ordered = [by_name[n] for n in STAGE_ORDER]
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            allowed = later.concurrent_with == earlier.name or earlier.concurrent_with == later.name
            if later.opens < earlier.closes and not allowed:
                raise ValueError(
                    f"stages.{later.name}: opens {_local(later.opens, zone)} before "
                    f"stages.{earlier.name} closes {_local(earlier.closes, zone)} (windows overlap)"
                )
            if later.opens < earlier.opens:
                raise ValueError(
                    f"stages.{later.name}: opens before stages.{earlier.name} (out of order)"
                )
        needed = self.awards.main + self.awards.finalist
        if needed > self.shortlist.min:
            raise ValueError(
                f"awards: {needed} awards ({self.awards.main} main + {self.awards.finalist} "
                f"finalist) do not fit a shortlist of at least {self.shortlist.min}"
            )
        unit_names = [u.name for u in self.units]
        dupe_units = sorted({n for n in unit_names if unit_names.count(n) > 1})
        if dupe_units:
            raise ValueError(f"units: listed twice: {', '.join(dupe_units)}")
        codes = [c.code for c in self.priority_conditions]
        if len(set(codes)) != len(codes):
            raise ValueError("priority_conditions: codes must be unique")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def stage(self, name: StageName) -> StageSpec:
        return next(s for s in self.stages if s.name == name)

    def to_local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)


def _to_utc(value: datetime, zone: ZoneInfo) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _local(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def parse_campaign(data: dict[str, Any], source: str = "campaign") -> CampaignSpec:
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None


def load_campaign(path: Path | str = DEFAULT_CAMPAIGN_FILE) -> CampaignSpec:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: campaign file not found") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        _refuse_towns_as_one_unit(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_campaign(data, str(path))


class Publicity(_Strict):
    """The formal public documents: who issues the 公示 and the commendation decision, who approves
    the final list, how the public objects, and when the decision is expected."""

    #: the issuing bodies (主办单位), in the order they sign
    issuers: list[str] = Field(default_factory=lambda: ["主办单位"], min_length=1)
    #: to whom the decision is addressed (主送)
    addressees: str = ""
    #: who approves the final list before the decision (审定)
    approver: str = "区政府"
    #: how to object: in writing, by phone, online; each a sentence of the 公示
    channels: list[str] = Field(default_factory=list)
    #: the conditions an objection must meet (real name, facts)
    objection_rules: str = ""
    #: the day the commendation decision is expected (shown until it is published)
    decision_expected: date | None = None


CampaignSpec.model_rebuild()
