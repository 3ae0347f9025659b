"""Public voting as rows: verified voters (stored hashed), one-time codes, every vote, the live
counters, the frozen tally and the committee's flags. The tally is always re-derivable from
``vote`` rows; ``vote_counter`` is only the fast copy that ``jingong votes verify`` checks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.append_only import make_append_only
from storage.types import StrEnumType, UTCDateTime


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class FlagKind(StrEnum):
    IP_BURST = "ip_burst"  # many votes from one address within a minute
    NETWORK_BURST = "network_burst"  # many votes from one network (/24, /48) within a minute
    FRESH_IDENTITIES = "fresh_identities"  # many new voters verified within a minute


class VoterIdentity(SQLModel, table=True):
    """A voter who proved control of an email address or a phone number. Only a keyed hash of
    the address is kept (HMAC with the service's secret key)."""

    __tablename__ = "voter_identity"
    __table_args__ = (UniqueConstraint("campaign_id", "identity_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    kind: IdentityKind = Field(sa_type=StrEnumType(IdentityKind))
    identity_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    #: minutes since the epoch of ``created_at`` (flag scans group by it)
    created_minute: int = Field(index=True)
    created_net_hash: str = Field(default="", max_length=64)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: wrong codes in a row; from the fifth on, the identity is locked for a doubling time
    failures: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class VoteCode(SQLModel, table=True):
    __tablename__ = "vote_code"

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="voter_identity.id", index=True)
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Vote(SQLModel, table=True):
    """One accepted vote. Never deleted: the committee invalidates it with a reason."""

    __tablename__ = "vote"
    __table_args__ = (
        # one row per (candidate, voter, Beijing day, slot): the database refuses a second vote
        UniqueConstraint("nomination_id", "voter_id", "day", "slot"),
        Index("ix_vote_voter_day", "voter_id", "day"),
        Index("ix_vote_campaign_minute", "campaign_id", "minute"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    nomination_id: int = Field(foreign_key="nomination.id", index=True)
    voter_id: int = Field(foreign_key="voter_identity.id")
    #: the calendar day in the campaign's time zone, ISO (2021-07-01)
    day: str = Field(max_length=10)
    slot: int = 1
    cast_at: datetime = Field(sa_type=UTCDateTime)
    minute: int
    ip_hash: str = Field(max_length=64)
    net_hash: str = Field(max_length=64)
    valid: bool = True
    invalidated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    invalidated_by: str | None = Field(default=None, max_length=128)
    invalid_reason: str | None = None
    #: the invalidation's public category (``voting.publication.CATEGORIES``); the reason stays internal
    invalid_category: str | None = Field(default=None, max_length=20)
    #: SHA-256 of the receipt code given to the voter (``voting.receipts``): what the published list
    #: carries and what the receipt page looks up; tied to no identity
    receipt_hash: str | None = Field(default=None, max_length=64, index=True)


# a vote is invalidated (marked), never removed
make_append_only(Vote.__table__, updates=True)  # type: ignore[attr-defined]


class VoterDay(SQLModel, table=True):
    """How many candidates a voter has voted for on one day (the per-day cap, race-free)."""

    __tablename__ = "voter_day"

    voter_id: int = Field(foreign_key="voter_identity.id", primary_key=True)
    day: str = Field(max_length=10, primary_key=True)
    candidates: int = 0


class VoteCounter(SQLModel, table=True):
    """The live tally, kept in the same transaction as each vote row."""

    __tablename__ = "vote_counter"

    nomination_id: int = Field(foreign_key="nomination.id", primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    votes: int = 0


class FrozenTally(SQLModel, table=True):
    """The tally as it stood when the voting stage closed: what the review board sees."""

    __tablename__ = "vote_tally"
    __table_args__ = (UniqueConstraint("campaign_id", "nomination_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    nomination_id: int = Field(foreign_key="nomination.id")
    votes: int
    frozen_at: datetime = Field(sa_type=UTCDateTime)


class VoteFlag(SQLModel, table=True):
    """A suspicious pattern for the committee to look at; nothing is dropped because of it."""

    __tablename__ = "vote_flag"
    __table_args__ = (UniqueConstraint("campaign_id", "kind", "key", "minute"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    kind: FlagKind = Field(sa_type=StrEnumType(FlagKind))
    #: the hashed address or network ("*" for all new voters)
    key: str = Field(max_length=64)
    minute: int
    count: int
    threshold: int
    created_at: datetime = Field(sa_type=UTCDateTime)


make_append_only(FrozenTally.__table__)  # type: ignore[attr-defined]


class PublishedTally(SQLModel, table=True):
    """The commitment to the anonymised vote list published at the voting close (``voting.publication``):
    never changed; a later invalidation is a ``TallyCorrection``."""

    __tablename__ = "published_tally"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", unique=True)
    rows: int
    sha256: str = Field(max_length=64)
    merkle_root: str = Field(max_length=64)
    totals: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    published_at: datetime = Field(sa_type=UTCDateTime)


class TallyCorrection(SQLModel, table=True):
    """A vote invalidated after the list was published: a new published record, not an edit."""

    __tablename__ = "tally_correction"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    #: the vote (internal: the page shows the receipt hash, candidate, day and category)
    vote_id: int = Field(foreign_key="vote.id", unique=True)
    receipt_hash: str = Field(max_length=64)
    nomination_id: int
    day: str = Field(max_length=10)
    category: str = Field(max_length=20)
    published_at: datetime = Field(sa_type=UTCDateTime)


make_append_only(PublishedTally.__table__)  # type: ignore[attr-defined]
make_append_only(TallyCorrection.__table__)  # type: ignore[attr-defined]
