"""Who may fire which event on a nomination. The office admin may do everything; acts that are
not state changes are ``accounts.service.ACTS``."""

from __future__ import annotations

from accounts.models import Role
from workflow.machine import Event

SCREENING_EVENTS = frozenset({Event.PASS_SCREENING, Event.REJECT, Event.RETURN, Event.SHORTLIST, Event.UNSHORTLIST,
                              Event.PASS_OVER})
REVIEW_EVENTS = frozenset({Event.VET, Event.NOT_SELECT, Event.FAIL_VETTING, Event.UPHOLD_OBJECTION,
                           Event.DISMISS_OBJECTION})
EVENT_ROLES: dict[Event, frozenset[Role]] = {
    event: frozenset({Role.OFFICE_ADMIN})
    | ({Role.REVIEWER} if event in SCREENING_EVENTS else set())
    | ({Role.VETTING_OFFICER} if event in REVIEW_EVENTS else set())
    for event in Event
}


def may_fire(role: Role, event: Event) -> bool:
    return role in EVENT_ROLES[event]
