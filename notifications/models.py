"""The outbox: every mail the service means to send is a row, written in the transaction of the
act that causes it, and sent later by the sender (``notifications.drain``)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import StrEnumType, UTCDateTime

MESSAGE_ID_DOMAIN = "jingong.local"


class MailStatus(StrEnum):
    HELD = "held"  # decided, not yet announced: waits for ``announce_stage`` or a release
    QUEUED = "queued"  # ready; the sender takes it once ``next_attempt_at`` has come
    SENDING = "sending"  # claimed by a sender (committed before the SMTP conversation starts)
    SENT = "sent"  # the server accepted it (or the file was written)
    FAILED = "failed"  # permanent refusal, or too many temporary ones; ``last_error`` says why


class MailTemplate(StrEnum):
    """Which template renders a mail: one per event of the state machine (same values) and one
    per stage notice."""

    SUBMIT = "submit"
    RETURN_FOR_CHANGES = "return_for_changes"
    RESUBMIT = "resubmit"
    WITHDRAW = "withdraw"
    PASS_SCREENING = "pass_screening"
    REJECT = "reject"
    SHORTLIST = "shortlist"
    UNSHORTLIST = "unshortlist"
    PASS_OVER = "pass_over"
    RECORD_VOTES = "record_votes"
    VET = "vet"
    NOT_SELECT = "not_select"
    RECONSIDER = "reconsider"
    FAIL_VETTING = "fail_vetting"
    OBJECT = "object"
    UPHOLD_OBJECTION = "uphold_objection"
    DISMISS_OBJECTION = "dismiss_objection"
    PUBLICIZE = "publicize"
    COMMEND = "commend"
    # stage notices
    STAGE_OPENED = "stage_opened"
    STAGE_CLOSED = "stage_closed"
    DEADLINE_REMINDER = "deadline_reminder"
    VOTING_OPEN = "voting_open"
    OBJECTION_RECEIVED = "objection_received"  # to the office
    COMMITTEE_ALERT = "committee_alert"  # to the office
    VOTE_CODE = "vote_code"  # a voter's one-time code (voting)
    OBJECTION_ACK = "objection_ack"  # to whoever lodged an objection
    UNIT_CHANGE = "unit_change"  # to a nominating unit's contact, at each change of its nominations
    TEST = "test"  # `jingong mail test`


def message_id_for(idempotency_key: str, resends: int = 0) -> str:
    """Deterministic Message-ID: a repeat of the same mail (a sender killed between the server's
    acceptance and its own "sent" mark) carries the same one. A deliberate resend gets a new one,
    or mail clients that drop duplicates by Message-ID would hide it."""
    seed = idempotency_key if resends == 0 else f"{idempotency_key}#resend{resends}"
    return f"<{hashlib.sha256(seed.encode('utf-8')).hexdigest()[:32]}@{MESSAGE_ID_DOMAIN}>"


class OutboxMail(SQLModel, table=True):
    __tablename__ = "outbox_mail"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_outbox_mail_idempotency_key"),
        Index("ix_outbox_mail_due", "status", "next_attempt_at"),
        Index("ix_outbox_mail_hold", "campaign_id", "hold_stage", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: what makes this mail unique: "n{nomination}:{event}:t{transition}" or a stage notice key
    idempotency_key: str = Field(max_length=200)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    nomination_id: int | None = Field(default=None, foreign_key="nomination.id", index=True)
    transition_id: int | None = Field(default=None)
    template: MailTemplate = Field(sa_type=StrEnumType(MailTemplate, 32))
    recipients: list[str] = Field(sa_column=Column(JSON, nullable=False))
    #: what the template saw (kept for preview and audit; the rendered parts are what is sent)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    subject: str = Field(sa_column=Column(Text, nullable=False))
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    status: MailStatus = Field(sa_type=StrEnumType(MailStatus), default=MailStatus.QUEUED)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: when a sender claimed it; a ``sending`` row older than the lease is taken over
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: the server's answer to the last failed attempt (or the refused recipients)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    #: recipients the server refused while accepting the others: {address: "550 ..."}
    refused: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    message_id: str = Field(max_length=100)
    resends: int = 0
    #: held decisions: why, which stage's announcement releases it, and an optional instant from
    #: which the sender releases it by itself (an announcement scheduled for later)
    hold_reason: str | None = Field(default=None, max_length=200)
    hold_stage: str | None = Field(default=None, max_length=32)
    release_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxControl(SQLModel, table=True):
    """The committee's switch: while ``held`` nothing leaves the outbox. One row (id 1)."""

    __tablename__ = "outbox_control"

    id: int | None = Field(default=None, primary_key=True)
    held: bool = False
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StageAnnouncement(SQLModel, table=True):
    """A stage whose decisions the office has published: its mails are no longer held."""

    __tablename__ = "outbox_announcement"
    __table_args__ = (UniqueConstraint("campaign_id", "stage", name="uq_outbox_announcement_stage"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    stage: str = Field(max_length=32)
    announced_at: datetime = Field(sa_type=UTCDateTime)
    announced_by: str
