"""An applicant's draft behind their link: created, changed and given evidence only while it is
a draft and the nomination window (with any extension) has not closed. Submitting and withdrawing
go through the state machine (``workflow.applicants``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName
from core import clock
from core.beijing import beijing_text
from core.errors import DeadlinePassed, InvalidTransition
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import State


def deadline_of(session: Session, nomination_or_campaign: Nomination | Campaign, spec: CampaignSpec) -> datetime:
    """The instant from which this nomination (or any new one) can no longer be changed."""
    if isinstance(nomination_or_campaign, Nomination):
        campaign_id, extension = nomination_or_campaign.campaign_id, nomination_or_campaign.extension_until
    else:
        campaign_id, extension = nomination_or_campaign.id or 0, None
    stage = campaigns.get_stage(session, campaign_id, StageName.NOMINATION)
    return campaigns.submission_deadline(stage, spec, extension)


def _refuse_after(deadline: datetime) -> None:
    if clock.received() >= deadline:
        local = beijing_text(deadline, seconds=True)
        raise DeadlinePassed(
            f"the nomination deadline passed at {deadline.isoformat()} ({local} Beijing time); "
            "the form can no longer be changed",
            deadline=deadline,
            message_zh=f"推荐申报已于北京时间{local}截止，表格不能再修改或提交",
        )


def ensure_editable(session: Session, nomination: Nomination, spec: CampaignSpec) -> None:
    if nomination.state == State.RETURNED and nomination.extension_until is not None:
        _refuse_after(nomination.extension_until)  # sent back for changes: until the due instant
        return
    if nomination.state != State.DRAFT:
        raise InvalidTransition(f"nomination {nomination.id} is {nomination.state}; only drafts can be edited",
                                message_zh="申报已提交，不能再修改")
    _refuse_after(deadline_of(session, nomination, spec))


def editable_by_token(session: Session, token: str) -> Nomination:
    """The draft behind an applicant's link, refused when it can no longer change (an upload asks
    before it reads the body, and again when it records the file)."""
    nomination = nominations.get_by_token(session, token)
    spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, nomination.campaign_id))
    ensure_editable(session, nomination, spec)
    return nomination


def create(session: Session, campaign: Campaign, spec: CampaignSpec, data: dict[str, Any]) -> Nomination:
    _refuse_after(deadline_of(session, campaign, spec))
    nomination = nominations.create_draft(session, campaign, spec, data)  # the values' own errors first
    if not (nomination.name or "").strip():  # an empty form is no draft: the request's transaction rolls back
        raise nominations.FormInvalid([nominations.Problem(
            "name", "a draft needs at least the name", "请至少填写“姓名”再保存草稿（空白表格不会保存）")])
    return nomination


def update(session: Session, nomination: Nomination, spec: CampaignSpec, data: dict[str, Any]) -> Nomination:
    ensure_editable(session, nomination, spec)
    return nominations.update_draft(session, nomination, spec, data)
