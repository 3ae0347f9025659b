"""What applicants do through their link: drafts, submission, evidence. Plain functions over a
session (no HTTP here); the portal pages and the REST API both call them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName
from core import clock
from core.actor import Actor
from core.errors import DeadlinePassed, InvalidTransition, NotFound, ValidationFailed
from nominations import service as nominations
from nominations.models import Attachment, AttachmentKind, Nomination
from nominations.states import State
from web.templating import beijing_text
from web.uploads import ReceivedFile
from workflow import service as workflow
from workflow.machine import Event
from workflow.models import TransitionRecord


def deadline_of(session: Session, nomination_or_campaign: Nomination | Campaign, spec: CampaignSpec) -> datetime:
    """The instant from which this nomination (or any new one) can no longer be changed."""
    if isinstance(nomination_or_campaign, Nomination):
        campaign_id, extension = nomination_or_campaign.campaign_id, nomination_or_campaign.extension_until
    else:
        campaign_id, extension = nomination_or_campaign.id or 0, None
    stage = campaigns.get_stage(session, campaign_id, StageName.NOMINATION)
    return campaigns.submission_deadline(stage, spec, extension)


def _refuse_after(deadline: datetime) -> None:
    if clock.now() >= deadline:
        local = beijing_text(deadline, seconds=True)
        raise DeadlinePassed(
            f"the nomination deadline passed at {deadline.isoformat()} ({local} Beijing time); "
            "the form can no longer be changed",
            deadline=deadline,
            message_zh=f"推荐申报已于北京时间{local}截止，表格不能再修改或提交",
        )


def ensure_editable(session: Session, nomination: Nomination, spec: CampaignSpec) -> None:
    if nomination.state != State.DRAFT:
        raise InvalidTransition(f"nomination {nomination.id} is {nomination.state}; only drafts can be edited",
                                message_zh="申报已提交，不能再修改")
    _refuse_after(deadline_of(session, nomination, spec))


def create(session: Session, campaign: Campaign, spec: CampaignSpec, data: dict[str, Any]) -> Nomination:
    _refuse_after(deadline_of(session, campaign, spec))
    return nominations.create_draft(session, campaign, spec, data)


def update(session: Session, nomination: Nomination, spec: CampaignSpec, data: dict[str, Any]) -> Nomination:
    ensure_editable(session, nomination, spec)
    return nominations.update_draft(session, nomination, spec, data)


def submit(session: Session, nomination: Nomination) -> TransitionRecord | None:
    assert nomination.id is not None
    record = workflow.transition(session, nomination.id, Event.SUBMIT, actor=Actor.applicant(),
                                 expected_version=nomination.version)
    session.refresh(nomination)
    return record


def withdraw(session: Session, nomination: Nomination, reason: str | None) -> TransitionRecord | None:
    assert nomination.id is not None
    record = workflow.transition(session, nomination.id, Event.WITHDRAW, actor=Actor.applicant(), reason=reason)
    session.refresh(nomination)
    return record


def attachments_of(session: Session, nomination_id: int) -> list[Attachment]:
    query = select(Attachment).where(Attachment.nomination_id == nomination_id).order_by(col(Attachment.id))
    return list(session.exec(query))


def get_attachment(session: Session, nomination: Nomination, attachment_id: int) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.nomination_id != nomination.id:
        raise NotFound(f"attachment {attachment_id} not found")
    return attachment


def parse_kind(raw: str | None) -> AttachmentKind:
    try:
        return AttachmentKind(raw or AttachmentKind.OTHER.value)
    except ValueError:
        known = ", ".join(k.value for k in AttachmentKind)
        raise ValidationFailed(f"unknown attachment kind {raw!r}; kinds: {known}",
                               message_zh="材料类别不正确") from None


def add_attachment(
    session: Session, nomination: Nomination, kind: AttachmentKind, received: ReceivedFile, storage_key: str
) -> Attachment:
    assert nomination.id is not None
    attachment = Attachment(
        nomination_id=nomination.id,
        kind=kind,
        filename=received.filename,
        content_type=received.content_type,
        size=received.size,
        sha256=received.sha256,
        storage_key=storage_key,
        uploaded_at=clock.now(),
    )
    session.add(attachment)
    session.flush()
    if kind is AttachmentKind.PHOTO:
        nomination.photo_attachment_id = attachment.id
        nomination.updated_at = clock.now()
        session.add(nomination)
        session.flush()
    return attachment


def status_view(session: Session, nomination: Nomination, spec: CampaignSpec) -> dict[str, Any]:
    """Everything the status page and the API show an applicant."""
    assert nomination.id is not None
    deadline = deadline_of(session, nomination, spec)
    now = clock.now()
    draft = nomination.state == State.DRAFT
    return {
        "nomination": nomination,
        "history": workflow.history(session, nomination.id),
        "attachments": attachments_of(session, nomination.id),
        "problems": nominations.form_problems(nomination, spec) if draft else [],
        "deadline": deadline,
        "editable": draft and now < deadline,
        "seconds_left": max(0, int((deadline - now).total_seconds())),
        "units": campaigns.list_units(session, nomination.campaign_id),
    }


def upload_folder(nomination: Nomination) -> str:
    return f"n{nomination.id}"


def attachment_path(uploads_dir: Path, attachment: Attachment) -> Path:
    from web.uploads import stored_path

    return stored_path(uploads_dir, attachment.storage_key)
