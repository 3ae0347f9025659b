"""Small helpers that build data through the real services."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from sqlmodel import Session

from campaigns.models import Campaign
from config.campaign import CampaignSpec, Track
from core.actor import Actor
from core.clock import ManualClock, use_clock
from nominations import service as nominations
from nominations.models import Nomination, NominationKind
from nominations.states import State
from workflow import service as workflow
from workflow.machine import Event

_names = itertools.count(1)

OFFICE = Actor.system("test-office")

#: The shortest path of events from draft to every state.
PATHS: dict[State, list[Event]] = {
    State.DRAFT: [],
    State.SUBMITTED: [Event.SUBMIT],
    State.RETURNED: [Event.SUBMIT, Event.RETURN],
    State.SCREENED: [Event.SUBMIT, Event.PASS_SCREENING],
    State.SHORTLISTED: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST],
    State.VOTED: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST, Event.RECORD_VOTES],
    State.VETTED: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST, Event.RECORD_VOTES, Event.VET],
    State.ON_HOLD: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST, Event.RECORD_VOTES, Event.VET,
                    Event.OBJECT],
    State.PUBLICIZED: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST, Event.RECORD_VOTES, Event.VET,
                       Event.PUBLICIZE],
    State.COMMENDED: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST, Event.RECORD_VOTES, Event.VET,
                      Event.PUBLICIZE, Event.COMMEND],
    State.WITHDRAWN: [Event.WITHDRAW],
    State.REJECTED: [Event.SUBMIT, Event.REJECT],
    State.NOT_SHORTLISTED: [Event.SUBMIT, Event.PASS_SCREENING, Event.PASS_OVER],
    State.NOT_SELECTED: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST, Event.RECORD_VOTES,
                         Event.NOT_SELECT],
    State.DISQUALIFIED: [Event.SUBMIT, Event.PASS_SCREENING, Event.SHORTLIST, Event.RECORD_VOTES,
                         Event.FAIL_VETTING],
}

#: a moment when the nomination stage is open (2021-05-01 10:00 Beijing)
_OPEN_UTC = "2021-05-01T02:00:00+00:00"


def complete_form(kind: NominationKind = NominationKind.SELF, **overrides: Any) -> dict[str, Any]:
    n = next(_names)
    form: dict[str, Any] = {
        "kind": kind,
        "applicant_email": f"applicant{n}@example.cn",
        "name": f"测试{n}号",
        "sex": "男",
        "ethnicity": "汉族",
        "birth_date": date(1975, 1, 1 + n % 28),
        "education": "大学专科",
        "political_status": "中共党员",
        "employer": "重庆某机械有限公司",
        "position": "车间主任",
        "technical_grade": "高级技师",
        "years_of_service": 25,
        "phone": "13800138000",
        "honours": "重庆市技术能手",
        "achievements": "主持数控工艺改进三项",
        "deeds": "扎根一线二十五年，带徒三十余人。",
        "priority_conditions": ["P2"],
    }
    if kind is NominationKind.SELF:
        form |= {"applicant_signature": form["name"], "applicant_signed_date": date(2021, 5, 1)}
    else:
        form |= {"unit_opinion": "同意推荐", "unit_opinion_date": date(2021, 5, 1), "unit_seal_confirmed": True}
    form.update(overrides)
    return form


def create_draft(session: Session, campaign: Campaign, spec: CampaignSpec, **overrides: Any) -> Nomination:
    """A complete draft with its photo recorded (``photo=False``: without, as a new form is)."""
    kind = overrides.pop("kind", NominationKind.SELF)
    photo = overrides.pop("photo", True)
    if kind == NominationKind.UNIT and "unit_id" not in overrides:
        from campaigns import service as campaigns

        overrides["unit_id"] = campaigns.list_units(session, campaign.id or 0)[0].id
    draft = nominations.create_draft(session, campaign, spec, complete_form(kind, **overrides))
    return with_photo(session, draft) if photo else draft


def with_photo(session: Session, nomination: Nomination) -> Nomination:
    """Record a photo for ``nomination`` (the row only; no file behind it), as an upload would."""
    from nominations import attachments
    from nominations.models import AttachmentKind

    attachments.record(session, nomination, AttachmentKind.PHOTO, filename="photo.jpg", content_type="image/jpeg",
                       size=1, sha256="0" * 64, storage_key=f"n{nomination.id}/photo.jpg")
    return nomination


def event_data(event: Event, track: Track = Track.MAIN) -> dict[str, Any]:
    """What an event carries in tests: a vet's track, a send-back's due instant (a week on)."""
    from datetime import timedelta

    from core import clock

    if event is Event.VET:
        return {"track": track.value}
    if event is Event.RETURN:
        return {"due_at": (clock.now() + timedelta(days=7)).isoformat()}
    return {}


def advance(session: Session, nomination: Nomination, state: State, *, track: Track = Track.MAIN) -> Nomination:
    """Drive ``nomination`` from draft to ``state`` through the transition service."""
    from datetime import datetime

    for event in PATHS[state]:
        data = event_data(event, track)
        reason = "test reason" if event in {Event.REJECT, Event.RETURN, Event.FAIL_VETTING, Event.OBJECT} else None
        if event is Event.SUBMIT:
            with use_clock(ManualClock(datetime.fromisoformat(_OPEN_UTC))):
                workflow.transition(session, nomination.id or 0, event, actor=OFFICE, reason=reason, data=data)
        else:
            workflow.transition(session, nomination.id or 0, event, actor=OFFICE, reason=reason, data=data)
    session.refresh(nomination)
    assert nomination.state == state
    return nomination


def create_nomination(
    session: Session, campaign: Campaign, spec: CampaignSpec, state: State = State.DRAFT,
    *, track: Track = Track.MAIN, **overrides: Any,
) -> Nomination:
    nomination = create_draft(session, campaign, spec, **overrides)
    return advance(session, nomination, state, track=track)


def open_review(session: Session, campaign: Campaign) -> None:
    """The review stage as its open step leaves it (递补 happens only while it is open)."""
    from campaigns import service as campaigns_service
    from config.campaign import StageName
    from core import clock

    stage = campaigns_service.get_stage(session, campaign.id or 0, StageName.REVIEW)
    stage.opened_at, stage.closed_at = clock.now(), None
    session.add(stage)
