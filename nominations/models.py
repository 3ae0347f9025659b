"""A nomination: the form of 附件2 (unit) or 附件3 (self), its evidence, and the registry of
earlier editions' awards."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from nominations.states import State
from storage.types import StrEnumType, UTCDateTime


class NominationKind(StrEnum):
    UNIT = "unit"  # 附件2 单位推荐
    SELF = "self"  # 附件3 自荐


class Sex(StrEnum):
    MALE = "男"
    FEMALE = "女"


def new_token() -> str:
    return secrets.token_urlsafe(24)


class NominationForm(SQLModel):
    """Every field of forms 附件2 and 附件3 that the applicant fills in."""

    kind: NominationKind = Field(sa_type=StrEnumType(NominationKind))
    unit_id: int | None = Field(default=None, foreign_key="nominatingunit.id", index=True)
    applicant_email: str | None = Field(default=None, max_length=254)
    name: str | None = Field(default=None, max_length=64)  # 姓名
    sex: Sex | None = Field(sa_type=StrEnumType(Sex), default=None)  # 性别
    ethnicity: str | None = Field(default=None, max_length=32)  # 民族
    birth_date: date | None = None  # 出生日期
    education: str | None = Field(default=None, max_length=32)  # 文化程度
    political_status: str | None = Field(default=None, max_length=32)  # 政治面貌
    employer: str | None = Field(default=None, max_length=128)  # 单位
    position: str | None = Field(default=None, max_length=64)  # 职务
    technical_grade: str | None = Field(default=None, max_length=16)  # 技术等级（职称）
    years_of_service: int | None = Field(default=None, ge=0, le=70)  # 工龄
    phone: str | None = Field(default=None, max_length=32)  # 联系电话
    honours: str | None = Field(default=None, sa_column=Column(Text))  # 已获荣誉
    achievements: str | None = Field(default=None, sa_column=Column(Text))  # 主要技术成果
    deeds: str | None = Field(default=None, sa_column=Column(Text))  # 主要事迹（500字以内）
    priority_conditions: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    # 附件2: 推荐单位意见（盖章）+ 日期; 附件3: 申请人签字 + 日期
    unit_opinion: str | None = Field(default=None, sa_column=Column(Text))
    unit_opinion_date: date | None = None
    unit_seal_confirmed: bool = False
    applicant_signature: str | None = Field(default=None, max_length=64)
    applicant_signed_date: date | None = None


class Nomination(NominationForm, table=True):
    __table_args__ = (Index("ix_nomination_campaign_state", "campaign_id", "state"),
                      # the committee lists: a unit's nominations in submission order (超名额)
                      Index("ix_nomination_campaign_unit_submitted", "campaign_id", "unit_id", "submitted_at"))

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    state: State = Field(sa_type=StrEnumType(State), default=State.DRAFT)
    #: optimistic concurrency: every state change bumps it, compare-and-set on write
    version: int = 1
    track: str | None = Field(default=None, max_length=16)  # main / finalist, set in review
    #: unguessable link to the applicant's status page
    token: str = Field(default_factory=new_token, unique=True, max_length=64)
    photo_attachment_id: int | None = None
    #: 编号 on the voting pages, posters and QR codes: given once when voting opens
    #: (``nominations.public.assign_numbers``) and never changed or reused
    ballot_number: int | None = None
    # 组委会意见（盖章）+ 日期
    committee_opinion: str | None = Field(default=None, sa_column=Column(Text))
    committee_opinion_date: date | None = None
    #: personal extension of the nomination deadline granted by the committee
    extension_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    extension_reason: str | None = None
    paper_copies_received: int = 0
    paper_received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AttachmentKind(StrEnum):
    PHOTO = "photo"  # 一寸近期免冠照片
    CERTIFICATE = "certificate"  # 职业资格证书
    AWARD = "award"  # 获奖情况证明
    ACHIEVEMENT = "achievement"  # 主要技术成果展示（图片、PPT、视频）
    OTHER = "other"


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    nomination_id: int = Field(foreign_key="nomination.id", index=True)
    kind: AttachmentKind = Field(sa_type=StrEnumType(AttachmentKind))
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=128)
    size: int
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=255)
    uploaded_at: datetime = Field(sa_type=UTCDateTime)


class PriorAwardKind(StrEnum):
    WINNER = "winner"  # 津工精匠
    FINALIST = "finalist"  # 津工精匠入围奖


class PriorAward(SQLModel, table=True):
    """Who won or was a finalist in an earlier edition (imported from CSV)."""

    __table_args__ = (Index("ix_prioraward_name", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    edition: int
    award: PriorAwardKind = Field(sa_type=StrEnumType(PriorAwardKind))
    name: str = Field(max_length=64)
    birth_date: date | None = None
    employer: str | None = Field(default=None, max_length=128)


class ReviewScore(SQLModel, table=True):
    """One reviewer's points for one candidate on one criterion of the campaign's scoring sheet
    (``[[review.criteria]]``); a reviewer submits all criteria of a candidate at once."""

    __table_args__ = (UniqueConstraint("nomination_id", "reviewer_id", "criterion"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    nomination_id: int = Field(foreign_key="nomination.id", index=True)
    reviewer_id: int = Field(foreign_key="user.id", index=True)
    criterion: str = Field(max_length=32)
    points: int
    comment: str | None = Field(default=None, sa_column=Column(Text))
    submitted_at: datetime = Field(sa_type=UTCDateTime)
