"""What committee members do to nominations, one at a time or ticked in bulk: the role and
conflict-of-interest checks in front of the transition service, row by row. A bulk act is all or
none: it runs in the caller's one transaction, and the first refusal names its nomination. The
office's record of paper copies received sits here too, behind the same conflict check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from accounts import service as accounts
from accounts.models import Role, User
from audit import service as audit
from core import clock
from core.actor import Actor, ActorKind
from core.errors import Forbidden, InvalidTransition, JingongError, ValidationFailed
from nominations import service as nominations
from nominations.models import Nomination
from workflow import permissions
from workflow import service as workflow
from workflow.machine import Event
from workflow.models import TransitionRecord


def actor_of(user: User) -> Actor:
    return Actor(ActorKind.USER, user.username, user.id, str(user.role))


def parse_event(raw: str) -> Event:
    try:
        return Event(raw)
    except ValueError:
        known = ", ".join(e.value for e in Event)
        raise InvalidTransition(f"unknown event {raw!r}; known events: {known}", message_zh="未知的操作") from None


def check_may_fire(user: User, event: Event) -> None:
    if not permissions.may_fire(Role(user.role), event):
        raise Forbidden(
            f"role {user.role} may not {event.value}",
            f"您的角色（{accounts.ROLE_LABELS_ZH[Role(user.role)]}）无权执行此操作",
        )


def has_conflict(user: User, nomination: Nomination) -> bool:
    """A member from the nominee's own unit does not act on that nomination."""
    return user.unit_id is not None and user.unit_id == nomination.unit_id


def check_no_conflict(user: User, nomination: Nomination) -> None:
    if has_conflict(user, nomination):
        raise Forbidden(
            f"{user.username} belongs to the nominating unit of nomination {nomination.id} (conflict of interest)",
            f"您与该申报的推荐单位存在利益关系（同一单位），请回避（申报编号{nomination.id}）",
        )


def fire(
    session: Session,
    user: User,
    nomination_id: int,
    event: Event | str,
    *,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> TransitionRecord | None:
    event = parse_event(str(event))
    check_may_fire(user, event)
    nomination = nominations.get(session, nomination_id)
    check_no_conflict(user, nomination)
    return workflow.transition(session, nomination_id, event, actor=actor_of(user), reason=reason,
                               data=data, expected_version=expected_version)


def fire_many(
    session: Session, user: User, ids: list[int], event: Event | str, *, reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """One event on many nominations in the caller's one transaction: all or none. Returns how
    many changed (repeats are no-ops)."""
    event = parse_event(str(event))
    check_may_fire(user, event)
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValidationFailed("choose at least one nomination", message_zh="请至少选择一项申报")
    for nomination_id in unique:
        check_no_conflict(user, nominations.get(session, nomination_id))
    records = workflow.transition_many(session, unique, event, actor=actor_of(user), reason=reason, data=data)
    return len(records)


def record_paper(session: Session, user: User, nomination: Nomination, copies: int) -> None:
    """The office received ``copies`` paper copies of the forms (the notice asks for two)."""
    if not 0 <= copies <= 20:
        raise ValidationFailed("copies must be between 0 and 20", message_zh="份数须为0至20")
    check_no_conflict(user, nomination)
    nomination.paper_copies_received = copies
    nomination.paper_received_at = clock.now() if copies else None
    session.add(nomination)
    audit.record(session, actor=actor_of(user), action="paper_received", subject=f"nomination:{nomination.id}",
                 campaign_id=nomination.campaign_id, data={"copies": copies})
    session.flush()


@dataclass(frozen=True)
class RowOutcome:
    """What a bulk act did to one ticked nomination: changed, unchanged (already there) or refused."""

    nomination_id: int
    state: str | None
    changed: bool = False
    refused: JingongError | None = None


def fire_each(
    session: Session, user: User, ids: list[int], event: Event | str, *, reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> list[RowOutcome]:
    """One event on each ticked nomination, each in its own savepoint of the caller's transaction:
    the ones a rule refuses stay as they were and say why, the others change. The role is checked
    once for all (a role that may not act is refused as a whole)."""
    event = parse_event(str(event))
    check_may_fire(user, event)
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise ValidationFailed("choose at least one nomination", message_zh="请至少选择一项申报")
    outcomes = []
    for nomination_id in unique:
        try:
            with session.begin_nested():
                nomination = nominations.get(session, nomination_id)
                check_no_conflict(user, nomination)
                record = workflow.transition(session, nomination_id, event, actor=actor_of(user), reason=reason,
                                             data=data)
        except JingongError as exc:
            current = session.get(Nomination, nomination_id)
            outcomes.append(RowOutcome(nomination_id, str(current.state) if current else None, refused=exc))
            continue
        outcomes.append(RowOutcome(nomination_id, str(nomination.state), changed=record is not None))
    return outcomes
