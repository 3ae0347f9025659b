"""Request and response bodies of the JSON API (the forms' fields, validated at the edge)."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from config.campaign import Track
from nominations.models import NominationKind, Sex

MAX_ID = 2**31 - 1


def _clean(value: str) -> str:
    """Refuse text no form would hold: control characters (other than line breaks and tabs) and
    lone surrogates, which the database could not store."""
    for ch in value:
        if ch in "\n\r\t":
            continue
        if unicodedata.category(ch) in {"Cc", "Cs"}:
            raise ValueError("contains a control character")
    return value


def typed(raw: str | None, limit: int) -> str:
    """What was typed into a search or filter box, without control characters (PostgreSQL refuses a
    NUL in text; a filter is lenient where a form field is refused), trimmed, at most ``limit``."""
    return "".join(ch for ch in raw or "" if unicodedata.category(ch) not in {"Cc", "Cs"}).strip()[:limit]


Str8 = Annotated[str, Field(max_length=8), AfterValidator(_clean)]
Str16 = Annotated[str, Field(max_length=16), AfterValidator(_clean)]
Str32 = Annotated[str, Field(max_length=32), AfterValidator(_clean)]
Str64 = Annotated[str, Field(max_length=64), AfterValidator(_clean)]
Str128 = Annotated[str, Field(max_length=128), AfterValidator(_clean)]
Str254 = Annotated[str, Field(max_length=254), AfterValidator(_clean)]
Str256 = Annotated[str, Field(max_length=256), AfterValidator(_clean)]
Str2000 = Annotated[str, Field(max_length=2000), AfterValidator(_clean)]
Str5000 = Annotated[str, Field(max_length=5000), AfterValidator(_clean)]


Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class NominationFields(BaseModel):
    """The fields of forms 附件2 / 附件3; every one may be left out of a draft."""

    model_config = ConfigDict(extra="forbid")

    unit_id: Id | None = Field(default=None, description="nominating unit (附件2 only)")
    applicant_email: Str254 | None = None
    name: Str64 | None = None
    sex: Sex | None = None
    ethnicity: Str32 | None = None
    birth_date: date | None = None
    education: Str32 | None = None
    political_status: Str32 | None = None
    employer: Str128 | None = None
    position: Str64 | None = None
    technical_grade: Str16 | None = None
    years_of_service: int | None = Field(default=None, ge=0, le=70)
    phone: Str32 | None = None
    honours: Str5000 | None = None
    achievements: Str5000 | None = None
    deeds: Str5000 | None = Field(default=None, description="at most 500 characters to submit")
    priority_conditions: list[Str8] | None = Field(default=None, max_length=20)
    unit_opinion: Str2000 | None = None
    unit_opinion_date: date | None = None
    unit_seal_confirmed: bool | None = None
    applicant_signature: Str64 | None = None
    applicant_signed_date: date | None = None

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        # a list or a flag cannot be "unset" on the row: None means "leave as it is"
        for key in ("priority_conditions", "unit_seal_confirmed"):
            if key in data and data[key] is None:
                del data[key]
        return data


class NominationCreate(NominationFields):
    kind: NominationKind = Field(description="unit (附件2 单位推荐) or self (附件3 自荐)")


class ProblemOut(BaseModel):
    field: str
    message: str
    message_zh: str


class AttachmentOut(BaseModel):
    id: int
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime


class HistoryOut(BaseModel):
    event: str
    from_state: str
    to_state: str
    #: when the change was written
    at: datetime
    #: when the request that made it arrived: what the deadline judged
    received_at: datetime
    actor: str
    reason: str | None


class NominationOut(BaseModel):
    id: int
    token: str
    status_url: str
    kind: str
    state: str
    state_zh: str
    version: int
    track: str | None
    form: dict[str, Any]
    deadline: datetime
    editable: bool
    seconds_left: int
    problems: list[ProblemOut]
    attachments: list[AttachmentOut]
    history: list[HistoryOut]


class Credentials(BaseModel):
    username: Str64
    password: Str256


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Str32
    reason: Str2000 | None = None
    track: Track | None = None
    expected_version: int | None = Field(default=None, ge=1, le=MAX_ID)


class BulkIn(EventIn):
    ids: list[Id] = Field(min_length=1, max_length=500)
    #: "all": one transaction, all change or none (the first refusal answers); "each": row by row,
    #: a refused row stays as it was and says why in ``rows``, the others change
    mode: Literal["all", "each"] = "all"


class WithdrawIn(BaseModel):
    reason: Str2000 | None = None


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nomination_id: Id
    name: Str64 = Field(min_length=1)
    contact: Str128 = Field(min_length=1)
    facts: Str5000 = Field(min_length=1)


class ObjectionReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt: str = Field(min_length=1, max_length=32)


# Path ids the database can hold (else 422 before any query); one alias per parameter name.
NominationId = Annotated[int, Path(ge=1, le=MAX_ID)]
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
ObjectionId = Annotated[int, Path(ge=1, le=MAX_ID)]
AttachmentId = Annotated[int, Path(ge=1, le=MAX_ID)]
MailId = Annotated[int, Path(ge=1, le=MAX_ID)]
