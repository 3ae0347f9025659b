"""Nomination forms: drafts, completeness, the prior-editions registry, quotas."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns.models import Campaign, NominatingUnit
from config.campaign import CampaignSpec
from core import clock
from core.actor import Actor
from core.clock import ensure_utc
from core.errors import InvalidTransition, NotFound, ValidationFailed
from nominations.choices import CHOICES
from nominations.models import (
    Nomination,
    NominationForm,
    NominationKind,
    PriorAward,
    PriorAwardKind,
)
from nominations.states import State

PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|\d{7,8})$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Fields every form needs, with their label on the paper form.
REQUIRED_FIELDS: dict[str, str] = {
    "name": "姓名",
    "sex": "性别",
    "ethnicity": "民族",
    "birth_date": "出生日期",
    "education": "文化程度",
    "political_status": "政治面貌",
    "employer": "单位",
    "position": "职务",
    "technical_grade": "技术等级（职称）",
    "years_of_service": "工龄",
    "phone": "联系电话",
    "achievements": "主要技术成果",
    "deeds": "主要事迹",
    "applicant_email": "联系邮箱",
}
UNIT_FIELDS = {"unit_id": "推荐单位", "unit_opinion": "推荐单位意见", "unit_opinion_date": "推荐单位意见日期"}
SELF_FIELDS = {"applicant_signature": "申请人签字", "applicant_signed_date": "签字日期"}

EDITABLE_FIELDS = frozenset(NominationForm.model_fields) - {"kind"}


@dataclass(frozen=True)
class Problem:
    field: str
    message: str  # English, for the API and logs
    message_zh: str  # Chinese, for the forms


def check_values(form: dict[str, Any], spec: CampaignSpec) -> list[Problem]:
    """Problems with the values present (a draft may be incomplete, never wrong)."""
    problems: list[Problem] = []
    for field, (allowed, standard) in CHOICES.items():
        value = form.get(field)
        if value and value not in allowed:
            label = REQUIRED_FIELDS[field]
            problems.append(Problem(field, f"{field} {value!r} is not in the list of {standard}: {', '.join(allowed)}",
                                    f"“{label}”请从列表中选择（{standard}）"))
    deeds = form.get("deeds")
    limit = spec.rules.deeds_max_chars
    if deeds and len(deeds) > limit:
        problems.append(Problem("deeds", f"deeds has {len(deeds)} characters; at most {limit}",
                                f"主要事迹共{len(deeds)}字，不得超过{limit}字"))
    grade = form.get("technical_grade")
    if grade and grade not in spec.technical_grades:
        problems.append(Problem("technical_grade",
                                f"technical_grade must be one of {', '.join(spec.technical_grades)}",
                                f"技术等级须为：{'/'.join(spec.technical_grades)}"))
    phone = form.get("phone")
    if phone and not PHONE_RE.match(phone.replace(" ", "")):
        problems.append(Problem("phone", f"phone {phone!r} is not a Chinese mobile or landline number",
                                "联系电话格式不正确（手机号11位或座机号码）"))
    email = form.get("applicant_email")
    if email and not EMAIL_RE.match(email):
        problems.append(Problem("applicant_email", f"applicant_email {email!r} is not an address",
                                "联系邮箱格式不正确"))
    codes = {c.code for c in spec.priority_conditions}
    unknown = [c for c in form.get("priority_conditions") or [] if c not in codes]
    if unknown:
        problems.append(Problem("priority_conditions", f"unknown priority condition(s) {unknown}",
                                "优先推荐条件不存在"))
    birth = form.get("birth_date")
    if isinstance(birth, date) and birth >= clock.now().date():
        problems.append(Problem("birth_date", "birth_date is in the future", "出生日期不正确"))
    return problems


def check_references(session: Session, campaign_id: int, form: dict[str, Any],
                     kept_unit_id: int | None = None) -> list[Problem]:
    """Rows the form points at must exist in this campaign: refused here with the field's name,
    before the database's foreign key would refuse it as an integrity error. A unit retired from
    the campaign file is not offered and not accepted either, unless the draft already names it
    (``kept_unit_id``: its nominations stay theirs)."""
    unit_id = form.get("unit_id")
    if unit_id is None:
        return []
    unit = session.get(NominatingUnit, unit_id) if isinstance(unit_id, int) and 0 < unit_id < 2**31 else None
    if unit is None or unit.campaign_id != campaign_id:
        return [Problem("unit_id", f"unit_id {unit_id} is not a nominating unit of this campaign",
                        "推荐单位不存在，请从列表中选择")]
    if unit.retired and unit_id != kept_unit_id:
        return [Problem("unit_id", f"unit_id {unit_id} ({unit.name}) no longer nominates in this campaign",
                        f"“{unit.name}”已不在本届推荐单位之列，请从列表中选择")]
    return []


class FormInvalid(ValidationFailed):
    """Values a form cannot hold, every one named with its field (the pages mark each field)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems), message_zh="；".join(p.message_zh for p in problems))
        self.problems = problems


def refuse(problems: list[Problem]) -> None:
    if problems:
        raise FormInvalid(problems)


def photo_problems(nomination: Nomination) -> list[Problem]:
    """The photo an applicant must upload before submitting (a draft may lack it)."""
    if nomination.photo_attachment_id is None:
        return [Problem("photo", "a photo is required before submitting", "请上传一寸近期免冠照片")]
    return []


def missing_fields(nomination: Nomination | dict[str, Any]) -> list[Problem]:
    data = nomination if isinstance(nomination, dict) else nomination.model_dump()
    kind = NominationKind(data["kind"])
    needed = dict(REQUIRED_FIELDS)
    needed.update(UNIT_FIELDS if kind is NominationKind.UNIT else SELF_FIELDS)
    problems = []
    for name, label in needed.items():
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(Problem(name, f"{name} is required", f"请填写“{label}”"))
    return problems


def form_problems(nomination: Nomination, spec: CampaignSpec) -> list[Problem]:
    """Everything that keeps this form from being submitted."""
    return missing_fields(nomination) + check_values(nomination.model_dump(), spec)


def _validated_form(data: dict[str, Any]) -> dict[str, Any]:
    try:
        form = NominationForm.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ValidationFailed(f"{field}: {err['msg']}") from None
    return form.model_dump(exclude_unset=True)


def create_draft(session: Session, campaign: Campaign, spec: CampaignSpec, data: dict[str, Any]) -> Nomination:
    unknown = set(data) - set(NominationForm.model_fields)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(sorted(unknown))}")
    values = _validated_form(data)
    assert campaign.id is not None
    refuse(check_values(values, spec) + check_references(session, campaign.id, values))
    now = clock.now()
    nomination = Nomination(campaign_id=campaign.id, created_at=now, updated_at=now, **values)
    session.add(nomination)
    session.flush()
    return nomination


def update_draft(session: Session, nomination: Nomination, spec: CampaignSpec, data: dict[str, Any]) -> Nomination:
    if nomination.state not in (State.DRAFT, State.RETURNED):
        raise InvalidTransition(f"nomination {nomination.id} is {nomination.state}; only drafts can be edited",
                                message_zh="申报已提交，不能再修改")
    unknown = set(data) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(f"field(s) not editable: {', '.join(sorted(unknown))}")
    merged = nomination.model_dump(include=set(NominationForm.model_fields)) | data
    values = _validated_form(merged)
    changed = {k: values.get(k) for k in data}
    refuse(check_values(changed, spec) + check_references(session, nomination.campaign_id, changed,
                                                          kept_unit_id=nomination.unit_id))
    for key in data:
        setattr(nomination, key, values.get(key))
    nomination.updated_at = clock.now()
    session.add(nomination)
    session.flush()
    return nomination


def get(session: Session, nomination_id: int, *, lock: bool = False) -> Nomination:
    """``lock``: hold the row until the transaction ends (PostgreSQL ``FOR UPDATE``; SQLite's
    one writer holds everything already), for acts that many people do to one nomination at once."""
    nomination = session.get(Nomination, nomination_id, with_for_update=lock or None, populate_existing=lock)
    if nomination is None:
        raise NotFound(f"nomination {nomination_id} not found")
    return nomination


def get_in_campaign(session: Session, campaign_id: int, nomination_id: int) -> Nomination:
    """A nomination of this campaign; another campaign's reads as not found."""
    nomination = session.get(Nomination, nomination_id)
    if nomination is None or nomination.campaign_id != campaign_id:
        raise NotFound(f"nomination {nomination_id} not found")
    return nomination


def get_by_token(session: Session, token: str) -> Nomination:
    nomination = session.exec(select(Nomination).where(Nomination.token == token)).first()
    if nomination is None:
        raise NotFound("no nomination for this link")
    return nomination


def list_nominations(
    session: Session, campaign_id: int, *, states: Iterable[State] | None = None, limit: int | None = None
) -> list[Nomination]:
    query = select(Nomination).where(Nomination.campaign_id == campaign_id).order_by(col(Nomination.id))
    if states is not None:
        query = query.where(col(Nomination.state).in_([s.value for s in states]))
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def highest_ballot_number(session: Session, campaign_id: int) -> int:
    """The highest 编号 ever given in the campaign (0 before voting opens)."""
    found = session.exec(select(func.max(Nomination.ballot_number)).where(Nomination.campaign_id == campaign_id)).one()
    return int(found or 0)


def count_by_state(session: Session, campaign_id: int) -> dict[State, int]:
    rows = session.exec(
        select(Nomination.state, func.count()).where(Nomination.campaign_id == campaign_id).group_by(Nomination.state)
    )
    return {State(state): n for state, n in rows}


# --- the registry of earlier editions -------------------------------------------------------


def prior_awards_of(session: Session, nomination: Nomination, spec: CampaignSpec) -> list[PriorAward]:
    """Registry rows that are this person: same name, and same birth date (or employer) where
    both sides know it."""
    if not nomination.name:
        return []
    editions = spec.rules.prior_editions
    earlier = (col(PriorAward.edition).in_(editions) if editions is not None
               else col(PriorAward.edition) < spec.edition)
    rows = session.exec(select(PriorAward).where(PriorAward.name == nomination.name.strip(), earlier))
    return [row for row in rows if same_person(row, nomination)]


def prior_editions_clause(spec: CampaignSpec) -> Any:
    editions = spec.rules.prior_editions
    return col(PriorAward.edition).in_(editions) if editions is not None else col(PriorAward.edition) < spec.edition


def same_person(row: PriorAward, nomination: Nomination) -> bool:
    """A registry row of the same name is this person unless the birth date (or, without one,
    the employer) differs where both sides know it."""
    if row.birth_date and nomination.birth_date:
        return row.birth_date == nomination.birth_date
    return not (row.employer and nomination.employer and row.employer.strip() != nomination.employer.strip())


PRIOR_COLUMNS = ("edition", "award", "name", "birth_date", "employer")
AWARD_ALIASES = {"winner": PriorAwardKind.WINNER, "津工精匠": PriorAwardKind.WINNER,
                 "finalist": PriorAwardKind.FINALIST, "津工精匠入围奖": PriorAwardKind.FINALIST,
                 "入围奖": PriorAwardKind.FINALIST}


def parse_prior_csv(text: str, source: str = "CSV") -> list[PriorAward]:
    """Parse the registry; any bad row refuses the whole file with the line and the problem."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("edition", "award", "name") if c not in header]
    if missing:
        raise ValidationFailed(
            f"{source}: missing column(s) {', '.join(missing)} (expected {','.join(PRIOR_COLUMNS)})"
        )
    rows: list[PriorAward] = []
    for line_no, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            raise ValidationFailed(f"{source} line {line_no}: more fields than columns")
        where = f"{source} line {line_no}"
        if not row.get("name"):
            raise ValidationFailed(f"{where}: name is empty")
        try:
            edition = int(row["edition"])
        except ValueError:
            raise ValidationFailed(f"{where}: edition {row['edition']!r} is not a number") from None
        award = AWARD_ALIASES.get(row["award"].lower() if row["award"].isascii() else row["award"])
        if award is None:
            raise ValidationFailed(f"{where}: award {row['award']!r} is not winner or finalist")
        birth = None
        if row.get("birth_date"):
            try:
                birth = date.fromisoformat(row["birth_date"])
            except ValueError:
                raise ValidationFailed(f"{where}: birth_date {row['birth_date']!r} is not YYYY-MM-DD") from None
        rows.append(PriorAward(edition=edition, award=award, name=row["name"], birth_date=birth,
                               employer=row.get("employer") or None))
    if not rows:
        raise ValidationFailed(f"{source}: no rows")
    return rows


def import_prior(session: Session, path: Path) -> int:
    """Load the registry from a CSV file; rows already present are not duplicated."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationFailed(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ValidationFailed(f"{path}: not UTF-8 text (save the sheet as CSV UTF-8)") from None
    rows = parse_prior_csv(text, str(path))
    existing = {(r.edition, r.award, r.name, r.birth_date, r.employer) for r in session.exec(select(PriorAward))}
    added = 0
    for row in rows:
        key = (row.edition, row.award, row.name, row.birth_date, row.employer)
        if key not in existing:
            session.add(row)
            existing.add(key)
            added += 1
    session.flush()
    return added


def enter_registry(session: Session, nomination: Nomination) -> PriorAward | None:
    """At the commendation: the winner or finalist enters the registry of earlier editions with
    this campaign's edition, so the next edition bars (or limits) them without a CSV import.
    Idempotent: a person already entered for this edition is not entered twice."""
    campaign = session.get(Campaign, nomination.campaign_id)
    if campaign is None or not nomination.name:
        return None
    award = PriorAwardKind.WINNER if nomination.track == "main" else PriorAwardKind.FINALIST
    name = nomination.name.strip()
    existing = session.exec(select(PriorAward).where(
        PriorAward.edition == campaign.edition, PriorAward.award == award, PriorAward.name == name,
        PriorAward.birth_date == nomination.birth_date)).first()
    if existing is not None:
        return existing
    row = PriorAward(edition=campaign.edition, award=award, name=name, birth_date=nomination.birth_date,
                     employer=(nomination.employer or "").strip() or None)
    session.add(row)
    return row


# --- quotas (附件1): over quota is allowed and flagged --------------------------------------


def unit_usage(session: Session, campaign_id: int) -> dict[int, int]:
    """Submitted (non-draft, non-withdrawn) nominations per unit."""
    rows = session.exec(
        select(Nomination.unit_id, func.count())
        .where(Nomination.campaign_id == campaign_id, col(Nomination.unit_id).is_not(None),
               col(Nomination.state).not_in([State.DRAFT.value, State.WITHDRAWN.value]))
        .group_by(col(Nomination.unit_id))
    )
    return {unit_id: n for unit_id, n in rows if unit_id is not None}


def of_unit(session: Session, unit_id: int) -> list[Nomination]:
    """Every nomination naming the unit, drafts and withdrawn ones included, oldest first."""
    query = select(Nomination).where(Nomination.unit_id == unit_id).order_by(col(Nomination.id))
    return list(session.exec(query))


def counts_toward_quota(nomination: Nomination) -> bool:
    """What ``unit_usage`` counts: submitted, not a draft and not withdrawn."""
    return nomination.state not in (State.DRAFT, State.WITHDRAWN)


def is_over_quota(session: Session, nomination: Nomination) -> bool:
    """Beyond its unit's quota in submission order: the first ``quota`` submitted are within it."""
    if nomination.unit_id is None:
        return False
    from nominations import queries  # the list queries build on this module's models only

    return (nomination.id or 0) in queries.over_quota_ids(session, nomination.campaign_id, nomination.unit_id)


def grant_extension(
    session: Session, nomination_id: int, *, until: datetime, reason: str, actor: Actor
) -> Nomination:
    """A personal extension of the nomination deadline for one draft (honoured by the clock guard)."""
    if not reason or not reason.strip():
        raise ValidationFailed("an extension needs a reason", message_zh="延期须说明理由")
    nomination = session.get(Nomination, nomination_id)
    if nomination is None:
        raise NotFound(f"nomination {nomination_id} not found")
    if nomination.state != State.DRAFT:
        raise ValidationFailed(f"nomination {nomination_id} is {nomination.state}; only a draft can be extended",
                               message_zh="只有未提交的申报可以延期")
    until = ensure_utc(until)
    if until <= clock.now():
        raise ValidationFailed("the extension must end in the future", message_zh="延期截止时间须晚于当前时间")
    nomination.extension_until, nomination.extension_reason = until, reason.strip()
    session.add(nomination)
    audit.record(session, actor=actor, action="extension_granted", subject=f"nomination:{nomination_id}",
                 reason=reason.strip(), campaign_id=nomination.campaign_id, data={"until": until.isoformat()})
    return nomination
