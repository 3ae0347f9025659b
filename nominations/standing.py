"""A nominating unit's standing: its nominations and its quota use (附件1: over quota is allowed
and flagged), for the unit's own page and the office's list of units."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from campaigns import units
from campaigns.models import NominatingUnit
from nominations import service as nominations
from nominations.models import Nomination


@dataclass(frozen=True)
class UnitStanding:
    unit: NominatingUnit
    #: submitted nominations (not drafts, not withdrawn): what the quota counts
    used: int
    nominations: list[Nomination] = field(default_factory=list)

    @property
    def over(self) -> bool:
        return self.used > self.unit.quota


def standing(session: Session, unit: NominatingUnit) -> UnitStanding:
    """One unit with every nomination naming it (drafts and withdrawn ones included, not counted)."""
    found = nominations.of_unit(session, unit.id or 0)
    return UnitStanding(unit, sum(1 for n in found if nominations.counts_toward_quota(n)), found)


def standings(session: Session, campaign_id: int) -> list[UnitStanding]:
    """Every unit of the campaign with its quota use, in the plan's order (retired units last)."""
    usage = nominations.unit_usage(session, campaign_id)
    rows = [UnitStanding(u, usage.get(u.id or 0, 0)) for u in units.units_of(session, campaign_id)]
    return sorted(rows, key=lambda s: s.unit.retired)
