"""The candidate state machine, as data, defined once.

One module-level ``Machine`` (``model=None``, ``auto_transitions=False``) is shared by every
nomination. transitions cannot attach to a SQLModel table object (pydantic refuses its helper
attributes, transitions issue #635), so the service applies the machine to a small plain
``NominationAdapter`` over the row and removes it after use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from transitions import Machine

from nominations.states import State


class Event(StrEnum):
    SUBMIT = "submit"
    RETURN = "return_for_changes"
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
    #: 递补: a candidate not selected comes back into the review while it is open (a shortfall)
    RECONSIDER = "reconsider"
    FAIL_VETTING = "fail_vetting"
    OBJECT = "object"
    UPHOLD_OBJECTION = "uphold_objection"
    DISMISS_OBJECTION = "dismiss_objection"
    PUBLICIZE = "publicize"
    COMMEND = "commend"


S = State
BEFORE_VETTING = [S.DRAFT, S.SUBMITTED, S.RETURNED, S.SCREENED, S.SHORTLISTED, S.VOTED]



class Guard(StrEnum):
    """The rules a transition may need. ``workflow.guards.Rules`` has one method of each name;
    each raises ``GuardFailed`` with the reason, so a refusal always says why."""

    FORM_COMPLETE = "form_complete"
    NOMINATION_OPEN = "nomination_open"
    NOT_PRIOR_WINNER = "not_prior_winner"
    SHORTLIST_ROOM = "shortlist_room"
    TRACK = "track"
    RETURN_DUE = "return_due"
    RESUBMIT_OPEN = "resubmit_open"
    REVIEW_OPEN = "review_open"
    #: the public pages show the candidate's photo: no submission without one
    PHOTO = "photo_uploaded"


#: The transition table; ``conditions`` name the guards the event must pass.
TRANSITIONS: list[dict[str, Any]] = [
    {
        "trigger": Event.SUBMIT,
        "source": S.DRAFT,
        "dest": S.SUBMITTED,
        "conditions": [Guard.FORM_COMPLETE, Guard.NOMINATION_OPEN, Guard.NOT_PRIOR_WINNER, Guard.PHOTO],
    },
    {"trigger": Event.WITHDRAW, "source": BEFORE_VETTING, "dest": S.WITHDRAWN},
    # 退回补正: what to fix is the reason; the due instant (data "due_at") acts as a personal extension
    {"trigger": Event.RETURN, "source": [S.SUBMITTED, S.SCREENED], "dest": S.RETURNED,
     "conditions": [Guard.RETURN_DUE]},
    {"trigger": Event.RESUBMIT, "source": S.RETURNED, "dest": S.SUBMITTED,
     "conditions": [Guard.FORM_COMPLETE, Guard.RESUBMIT_OPEN, Guard.PHOTO]},
    {"trigger": Event.PASS_SCREENING, "source": S.SUBMITTED, "dest": S.SCREENED},
    {"trigger": Event.REJECT, "source": [S.SUBMITTED, S.RETURNED, S.SCREENED], "dest": S.REJECTED},
    {"trigger": Event.SHORTLIST, "source": S.SCREENED, "dest": S.SHORTLISTED,
     "conditions": [Guard.SHORTLIST_ROOM]},
    {"trigger": Event.UNSHORTLIST, "source": S.SHORTLISTED, "dest": S.SCREENED},
    {"trigger": Event.PASS_OVER, "source": S.SCREENED, "dest": S.NOT_SHORTLISTED},
    {"trigger": Event.RECORD_VOTES, "source": S.SHORTLISTED, "dest": S.VOTED},
    {"trigger": Event.VET, "source": S.VOTED, "dest": S.VETTED, "conditions": [Guard.TRACK]},
    {"trigger": Event.NOT_SELECT, "source": S.VOTED, "dest": S.NOT_SELECTED},
    {"trigger": Event.RECONSIDER, "source": S.NOT_SELECTED, "dest": S.VOTED, "conditions": [Guard.REVIEW_OPEN]},
    {"trigger": Event.FAIL_VETTING, "source": [S.VOTED, S.VETTED], "dest": S.DISQUALIFIED},
    {"trigger": Event.OBJECT, "source": S.VETTED, "dest": S.ON_HOLD},
    {"trigger": Event.UPHOLD_OBJECTION, "source": S.ON_HOLD, "dest": S.DISQUALIFIED},
    {"trigger": Event.DISMISS_OBJECTION, "source": S.ON_HOLD, "dest": S.VETTED},
    {"trigger": Event.PUBLICIZE, "source": S.VETTED, "dest": S.PUBLICIZED},
    {"trigger": Event.COMMEND, "source": S.PUBLICIZED, "dest": S.COMMENDED},
]

#: Events that must say why (recorded in the log and shown to the applicant).
REASON_REQUIRED = frozenset(
    {Event.REJECT, Event.RETURN, Event.FAIL_VETTING, Event.OBJECT, Event.UPHOLD_OBJECTION,
     Event.DISMISS_OBJECTION, Event.RECONSIDER}
)

EVENT_LABELS_ZH: dict[Event, str] = {
    Event.SUBMIT: "提交申报",
    Event.RETURN: "退回补正",
    Event.RESUBMIT: "补正后重新提交",
    Event.WITHDRAW: "撤回申报",
    Event.PASS_SCREENING: "通过资格审核",
    Event.REJECT: "未通过资格审核",
    Event.SHORTLIST: "确定为初步候选人",
    Event.UNSHORTLIST: "移出初步候选人名单",
    Event.PASS_OVER: "未入选初步候选人",
    Event.RECORD_VOTES: "投票评选结束",
    Event.VET: "确定为正式候选人",
    Event.NOT_SELECT: "未入选正式候选人",
    Event.RECONSIDER: "递补重新纳入综合评审",
    Event.FAIL_VETTING: "取消资格",
    Event.OBJECT: "收到异议",
    Event.UPHOLD_OBJECTION: "异议成立",
    Event.DISMISS_OBJECTION: "异议不成立",
    Event.PUBLICIZE: "公示无异议",
    Event.COMMEND: "命名表彰",
}


@dataclass
class NominationAdapter:
    """What the machine sees of a nomination: its state and the judge of its guards.

    transitions looks each condition up by name on the model, so every ``Guard`` name resolves
    to ``judge(guard)``. The service's judge is ``workflow.guards.Rules.check`` (it needs the
    database, the calendar and the clock); without a judge every guard passes (the diagram alone).
    """

    state: State
    judge: Callable[[Guard], bool] | None = None

    def __getattr__(self, name: str) -> Callable[..., bool]:
        try:
            guard = Guard(name)
        except ValueError:
            raise AttributeError(name) from None
        return lambda *_args, **_kwargs: self.judge is None or self.judge(guard)


MACHINE = Machine(
    model=None,
    states=State,
    transitions=TRANSITIONS,
    initial=None,
    auto_transitions=False,
    ignore_invalid_triggers=False,
)


def allowed_events(state: State) -> list[Event]:
    """The events the diagram allows from ``state`` (before any guard)."""
    return [Event(t) for t in MACHINE.get_triggers(state.name)]


def destination(event: Event, state: State) -> State | None:
    """Where ``event`` takes a nomination in ``state``, or None if the diagram forbids it."""
    ev = MACHINE.events.get(event.value)
    if ev is None or state.name not in ev.transitions:
        return None
    return State[str(ev.transitions[state.name][0].dest)]


def destinations_of(event: Event) -> set[State]:
    ev = MACHINE.events[event.value]
    return {State[str(t.dest)] for ts in ev.transitions.values() for t in ts}


def edges() -> list[tuple[State, Event, State]]:
    """Every (source, event, destination) of the diagram, read from the machine itself."""
    out: list[tuple[State, Event, State]] = []
    for name, ev in MACHINE.events.items():
        for source, transitions in ev.transitions.items():
            for t in transitions:
                out.append((State[source], Event(name), State[str(t.dest)]))
    order = list(State)
    return sorted(out, key=lambda e: (order.index(e[0]), order.index(e[2]), e[1].value))


def to_mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {State.DRAFT.value}"]
    for source, event, dest in edges():
        lines.append(f"    {source.value} --> {dest.value}: {event.value}")
    from nominations.states import FINAL_STATES

    for state in State:
        if state in FINAL_STATES:
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines)


_local = threading.local()


def run(adapter: NominationAdapter, event: Event) -> State:
    """Fire ``event`` on ``adapter``'s state through the shared machine; returns the new state.

    Adding a model to a machine decorates it with every trigger, which costs more than the
    transition itself; so each thread keeps one carrier model on the machine for good (no model
    is ever left behind per nomination) and loads the adapter's state and guards into it."""
    carrier: NominationAdapter | None = getattr(_local, "carrier", None)
    if carrier is None:
        carrier = _local.carrier = NominationAdapter(state=State.DRAFT)
        MACHINE.add_model(carrier, initial=State.DRAFT)
    MACHINE.set_state(adapter.state, carrier)
    carrier.judge = adapter.judge
    try:
        fired = MACHINE.events[event.value].trigger(carrier)
    finally:
        carrier.judge = None
    if not fired:  # a condition returned False without raising
        from core.errors import GuardFailed

        raise GuardFailed(f"{event.value} refused by a guard")
    adapter.state = State(carrier.state)
    return adapter.state
