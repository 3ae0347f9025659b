"""The one door for state changes.

``transition_many()`` plans the event for every nomination (the diagram, the reason, the
guards), then applies the plan: one compare-and-set UPDATE on ``version`` and one INSERT of the
transition records for the whole batch, then the hooks, all in the caller's database
transaction. ``transition()`` is its single-row case. Nothing here commits: the unit of work
around it does. Repeating an event whose result already holds does nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from audit import chain
from config.campaign import Track
from core import clock
from core.actor import Actor
from core.errors import ConcurrentChange, GuardFailed, InvalidTransition, JingongError, NotFound
from nominations.models import Nomination
from nominations.states import STATE_LABELS_ZH, State
from workflow import hooks, queries
from workflow.guards import Rules, return_due
from workflow.machine import REASON_REQUIRED, Event, NominationAdapter, destination, destinations_of, run
from workflow.models import TransitionRecord

_NOMINATION = Nomination.__table__  # type: ignore[attr-defined]
_RECORDS = TransitionRecord.__table__  # type: ignore[attr-defined]
_INSERT_RECORD = insert(_RECORDS).returning(_RECORDS.c.id)
_INSERT_RECORD_MANY = insert(_RECORDS).returning(_RECORDS.c.id, sort_by_parameter_order=True)


@dataclass
class _Move:
    """One planned change: the row, the state it leaves and the columns it gets."""

    nomination: Nomination
    current: State
    values: dict[str, Any]


def transition(
    session: Session,
    nomination_id: int,
    event: Event | str,
    *,
    actor: Actor,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> TransitionRecord | None:
    """Apply ``event`` to one nomination. Returns the record, or None if it was a no-op.
    ``expected_version``: refuse if the row changed since the caller read it."""
    records = transition_many(session, [nomination_id], event, actor=actor, reason=reason, data=data,
                              expected_versions=None if expected_version is None else {nomination_id: expected_version})
    return records[0] if records else None


def transition_many(
    session: Session,
    nomination_ids: list[int],
    event: Event | str,
    *,
    actor: Actor,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    expected_versions: dict[int, int] | None = None,
) -> list[TransitionRecord]:
    """Apply ``event`` to many nominations at once (a stage close, a bulk act). All or nothing:
    any refusal or conflict raises and the caller's transaction rolls back. Nominations already
    in the event's result are skipped (no-op)."""
    event = _event(event)
    data = dict(data or {})
    reason = reason.strip() if reason else None
    if not nomination_ids:
        return []
    with session.no_autoflush:
        rows = _load(session, nomination_ids, expected_versions or {})
        moves = _plan(session, rows, event, reason, data, several=len(nomination_ids) > 1)
        if not moves:
            return []
        records = _apply(session, moves, event, actor, reason, data)
    for move, record in zip(moves, records, strict=True):
        hooks.dispatch(session, move.nomination, record)
    return records


def move_all(
    session: Session, campaign_id: int, source: State, event: Event, *, actor: Actor, reason: str | None = None,
    batch: int = 500,
) -> int:
    """Fire ``event`` on every nomination in ``source`` (a stage close). Returns how many moved."""
    ids = queries.ids_in_state(session, campaign_id, source)
    moved = 0
    for start in range(0, len(ids), batch):
        moved += len(transition_many(session, ids[start:start + batch], event, actor=actor, reason=reason))
    return moved


def replay(records: list[TransitionRecord]) -> State:
    """The state the log leads to, from draft, checking every step against the diagram."""
    state = State.DRAFT
    for record in records:
        if record.from_state != state.value:
            raise ValueError(f"log broken at record {record.id}: expected from {state}, got {record.from_state}")
        target = destination(Event(record.event), state)
        if target is None or target.value != record.to_state:
            raise ValueError(f"log record {record.id} is not an edge of the diagram")
        state = target
    return state


def _event(event: Event | str) -> Event:
    try:
        return Event(event)
    except ValueError:
        known = ", ".join(e.value for e in Event)
        raise InvalidTransition(f"unknown event {event!r}; known events: {known}") from None


def _load(session: Session, nomination_ids: list[int], expected_versions: dict[int, int]) -> list[Nomination]:
    rows = session.exec(
        select(Nomination).where(col(Nomination.id).in_(nomination_ids)).order_by(col(Nomination.id))
        .execution_options(populate_existing=True)
    ).all()
    missing = set(nomination_ids) - {n.id for n in rows}
    if missing:
        if len(nomination_ids) == 1:
            raise NotFound(f"nomination {nomination_ids[0]} not found")
        raise NotFound(f"nomination(s) {sorted(missing)} not found")
    for nomination in rows:
        expected = expected_versions.get(nomination.id or 0)
        if expected is not None and nomination.version != expected:
            raise ConcurrentChange(
                f"nomination {nomination.id} changed meanwhile (version {nomination.version}, "
                f"you saw {expected}); reload and try again",
                message_zh="该申报已被他人修改，请刷新后重试",
            )
    return list(rows)


def _plan(session: Session, rows: list[Nomination], event: Event, reason: str | None, data: dict[str, Any],
          *, several: bool) -> list[_Move]:
    """Check each row against the diagram, the reason and the guards; what would move, and how.
    In a batch, a refusal names the nomination that stopped it."""
    now = clock.now()
    moves: list[_Move] = []
    for nomination in rows:
        try:
            move = _plan_one(session, nomination, event, reason, data, now, ahead=len(moves))
        except JingongError as exc:
            if several:
                exc.args = (f"nomination {nomination.id}: {exc}",)
                exc.message_zh = f"申报编号{nomination.id}：{exc.message_zh or ''}".rstrip("：")
            raise
        if move is not None:
            moves.append(move)
    return moves


def _plan_one(session: Session, nomination: Nomination, event: Event, reason: str | None, data: dict[str, Any],
              now: datetime, *, ahead: int) -> _Move | None:
    current = State(nomination.state)
    if destination(event, current) is None:
        if _already_there(event, current, nomination, data):
            return None
        raise InvalidTransition(
            f"cannot {event.value} nomination {nomination.id}: it is {current.value}",
            message_zh=f"当前状态为“{STATE_LABELS_ZH[current]}”，不能执行此操作",
        )
    if event in REASON_REQUIRED and not reason:
        raise GuardFailed(f"{event.value} needs a reason", message_zh="请填写理由")
    rules = Rules(session, nomination, event, data, ahead=ahead)
    new_state = run(NominationAdapter(state=current, judge=rules.check), event)
    values = {"state": new_state, "version": nomination.version + 1, "updated_at": now, **_effects(event, data, now)}
    return _Move(nomination, current, values)


def _apply(session: Session, moves: list[_Move], event: Event, actor: Actor, reason: str | None,
           data: dict[str, Any]) -> list[TransitionRecord]:
    """Write the plan: compare-and-set every row on its version, append the records (Core
    statements, not the ORM flush: this is the hot path of every stage close)."""
    params = [{"w_id": m.nomination.id, "w_version": m.nomination.version,
               **{f"b_{k}": v for k, v in m.values.items()}} for m in moves]
    statement = _compare_and_set(frozenset(moves[0].values))
    # one row: a plain execute, whose rowcount every driver reports; many: executemany, whose
    # summed rowcount only some drivers report
    result = session.execute(statement, params[0] if len(params) == 1 else params)
    counted = len(params) == 1 or session.get_bind().dialect.supports_sane_multi_rowcount
    if counted and result.rowcount != len(moves):  # type: ignore[attr-defined]
        raise ConcurrentChange(
            f"{len(moves) - result.rowcount} of {len(moves)} nomination(s) were changed by somebody else "  # type: ignore[attr-defined]
            "at the same time; nothing was changed, reload and try again",
            message_zh="申报已被他人同时修改，本次操作未生效，请刷新后重试",
        )
    now = moves[0].values["updated_at"]
    received = clock.received()
    clean = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool | None)}
    records = [
        TransitionRecord(nomination_id=m.nomination.id or 0, campaign_id=m.nomination.campaign_id,
                         event=event.value, from_state=m.current.value, to_state=m.values["state"].value,
                         version=m.values["version"], actor=str(actor), reason=reason, at=now,
                         received_at=received, data=clean)
        for m in moves
    ]
    rows = [r.model_dump(exclude={"id"}) for r in records]
    for campaign_id in dict.fromkeys(row["campaign_id"] for row in rows):  # one chain per campaign
        chain.append(session, campaign_id, "transition_log", [r for r in rows if r["campaign_id"] == campaign_id])
    for record, row in zip(records, rows, strict=True):
        record.chain_seq, record.prev_hash, record.row_hash = row["chain_seq"], row["prev_hash"], row["row_hash"]
    if len(rows) == 1:
        ids = [session.execute(_INSERT_RECORD, rows[0]).scalar_one()]
    else:
        ids = list(session.execute(_INSERT_RECORD_MANY, rows).scalars().all())
    for record, record_id, move in zip(records, ids, moves, strict=True):
        record.id = record_id
        # the row now holds what the UPDATE wrote; mirror it without another query
        for attr, value in move.values.items():
            set_committed_value(move.nomination, attr, value)
    return records


@functools.cache
def _compare_and_set(columns: frozenset[str]) -> Update:
    """UPDATE nomination SET ... WHERE id = :w_id AND version = :w_version, built once per column set."""
    return (
        update(_NOMINATION)
        .where(_NOMINATION.c.id == bindparam("w_id"), _NOMINATION.c.version == bindparam("w_version"))
        .values({name: bindparam(f"b_{name}") for name in sorted(columns)})
    )


def _already_there(event: Event, current: State, nomination: Nomination, data: dict[str, Any]) -> bool:
    """Setting the same state again does nothing."""
    if current not in destinations_of(event):
        return False
    return not (event is Event.VET and data.get("track") and data["track"] != nomination.track)


def _effects(event: Event, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    if event is Event.SUBMIT:
        return {"submitted_at": clock.received()}  # the instant the deadline judged
    if event is Event.VET:
        return {"track": Track(data["track"]).value}
    if event is Event.RETURN:  # the due instant acts as a personal extension
        return {"extension_until": return_due(data), "extension_reason": "退回补正"}
    return {}
