"""How the nomination stage is going: when nominations were submitted (for the dashboard's chart)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from nominations.models import Nomination
from nominations.states import State


def submitted_instants(session: Session, campaign_id: int) -> list[datetime]:
    """The first submission instant of every nomination that left the draft (withdrawn ones too:
    they were submitted that day)."""
    rows = session.exec(select(Nomination.submitted_at).where(
        Nomination.campaign_id == campaign_id, col(Nomination.submitted_at).is_not(None),
        Nomination.state != State.DRAFT.value))
    return [at for at in rows if at is not None]
