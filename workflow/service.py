"""The one door for state changes.

``transition()`` checks the event against the diagram and the guards, writes the new state with
a compare-and-set on ``version``, appends the transition record and dispatches the hooks, all in
the caller's database transaction. It never commits: the unit of work around it does.
Repeating an event whose result already holds does nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Update, bindparam, func, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName, Track
from core import clock
from core.actor import Actor
from core.errors import ConcurrentChange, DeadlinePassed, GuardFailed, InvalidTransition, NotFound
from nominations import service as nominations
from nominations.models import Nomination, PriorAwardKind
from nominations.states import STATE_LABELS_ZH, State
from workflow import hooks
from workflow.machine import REASON_REQUIRED, Event, NominationAdapter, destination, destinations_of, run
from workflow.models import TransitionRecord


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
    """Apply ``event`` to the nomination. Returns the record, or None if it was a no-op."""
    event = _event(event)
    data = dict(data or {})
    reason = reason.strip() if reason else None
    with session.no_autoflush:
        nomination = session.get(Nomination, nomination_id, populate_existing=True)
        if nomination is None:
            raise NotFound(f"nomination {nomination_id} not found")
        if expected_version is not None and nomination.version != expected_version:
            raise ConcurrentChange(
                f"nomination {nomination_id} changed meanwhile (version {nomination.version}, "
                f"you saw {expected_version}); reload and try again",
                message_zh="该申报已被他人修改，请刷新后重试",
            )
        current = State(nomination.state)
        target = destination(event, current)
        if target is None:
            if _already_there(event, current, nomination, data):
                return None
            raise InvalidTransition(
                f"cannot {event.value} nomination {nomination_id}: it is {current.value}",
                message_zh=f"当前状态为“{STATE_LABELS_ZH[current]}”，不能执行此操作",
            )
        if event in REASON_REQUIRED and not reason:
            raise GuardFailed(f"{event.value} needs a reason", message_zh="请填写理由")
        context = _GuardContext(session, nomination, event, data)
        adapter = NominationAdapter(state=current, guards=context.guards())
        new_state = run(adapter, event)

        now = clock.now()
        values: dict[str, Any] = {"state": new_state, "version": nomination.version + 1, "updated_at": now}
        values.update(_effects(event, data, now))
        result = session.execute(
            _compare_and_set(frozenset(values)),
            {"w_id": nomination_id, "w_version": nomination.version, **{f"b_{k}": v for k, v in values.items()}},
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentChange(
                f"nomination {nomination_id} was changed by somebody else at the same time; "
                "reload and try again",
                message_zh="该申报已被他人同时修改，请刷新后重试",
            )
        record = TransitionRecord(
            nomination_id=nomination_id,
            campaign_id=nomination.campaign_id,
            event=event.value,
            from_state=current.value,
            to_state=new_state.value,
            version=values["version"],
            actor=str(actor),
            reason=reason,
            at=now,
            data={k: v for k, v in data.items() if isinstance(v, str | int | float | bool | None)},
        )
        # Core insert (not the ORM flush): this is the hot path of every stage close
        record.id = session.execute(_INSERT_RECORD, record.model_dump(exclude={"id"})).scalar_one()
        # the row now holds what the UPDATE wrote; mirror it without another query
        for attr, value in values.items():
            set_committed_value(nomination, attr, value)
    hooks.dispatch(session, nomination, record)
    return record


_NOMINATION = Nomination.__table__  # type: ignore[attr-defined]
_RECORDS = TransitionRecord.__table__  # type: ignore[attr-defined]
_INSERT_RECORD = insert(_RECORDS).returning(_RECORDS.c.id)
_INSERT_RECORD_MANY = insert(_RECORDS).returning(_RECORDS.c.id, sort_by_parameter_order=True)


@functools.cache
def _compare_and_set(columns: frozenset[str]) -> Update:
    """UPDATE nomination SET ... WHERE id = :w_id AND version = :w_version, built once per column set."""
    return (
        update(_NOMINATION)
        .where(_NOMINATION.c.id == bindparam("w_id"), _NOMINATION.c.version == bindparam("w_version"))
        .values({name: bindparam(f"b_{name}") for name in sorted(columns)})
    )


def _event(event: Event | str) -> Event:
    try:
        return Event(event)
    except ValueError:
        known = ", ".join(e.value for e in Event)
        raise InvalidTransition(f"unknown event {event!r}; known events: {known}") from None


def _already_there(event: Event, current: State, nomination: Nomination, data: dict[str, Any]) -> bool:
    """Setting the same state again does nothing."""
    if current not in destinations_of(event):
        return False
    if event is Event.VET and data.get("track") and data["track"] != nomination.track:
        return False
    return True


def _effects(event: Event, data: dict[str, Any], now: Any) -> dict[str, Any]:
    if event is Event.SUBMIT:
        return {"submitted_at": now}
    if event is Event.VET:
        return {"track": Track(data["track"]).value}
    return {}


class _GuardContext:
    """The rules of the campaign, evaluated against the database and the clock."""

    def __init__(self, session: Session, nomination: Nomination, event: Event, data: dict[str, Any]):
        self.session = session
        self.nomination = nomination
        self.event = event
        self.data = data

    @functools.cached_property
    def campaign(self) -> Campaign:
        return campaigns.get_campaign_by_id(self.session, self.nomination.campaign_id)

    @functools.cached_property
    def spec(self) -> CampaignSpec:
        return campaigns.spec_of(self.campaign)

    def guards(self) -> dict[str, Callable[[], bool]]:
        return {
            "guard_form_complete": self.form_complete,
            "guard_nomination_open": self.nomination_open,
            "guard_not_prior_winner": self.not_prior_winner,
            "guard_shortlist_room": self.shortlist_room,
            "guard_track": self.track_allowed,
        }

    def form_complete(self) -> bool:
        problems = nominations.form_problems(self.nomination, self.spec)
        if problems:
            fields = ", ".join(p.field for p in problems)
            raise GuardFailed(
                f"the form is not complete: {'; '.join(p.message for p in problems)}",
                message_zh="表格未填写完整：" + "；".join(p.message_zh for p in problems),
            ) from ValueError(fields)
        return True

    def nomination_open(self) -> bool:
        stage = campaigns.get_stage(self.session, self.campaign.id or 0, StageName.NOMINATION)
        now = clock.now()
        deadline = campaigns.submission_deadline(stage, self.spec, self.nomination.extension_until)
        local = self.spec.to_local(deadline).strftime("%Y-%m-%d %H:%M:%S")
        if now < stage.opens_at:
            opens = self.spec.to_local(stage.opens_at).strftime("%Y-%m-%d %H:%M")
            raise GuardFailed(
                f"nominations open at {opens} ({self.spec.timezone})",
                message_zh=f"推荐申报尚未开始，开始时间为北京时间{opens}",
            )
        if now >= deadline:
            raise DeadlinePassed(
                f"the nomination deadline passed at {local} ({self.spec.timezone}); "
                "submissions are no longer accepted",
                deadline=deadline,
                message_zh=f"推荐申报已于北京时间{local}截止，不再接受提交",
            )
        return True

    def not_prior_winner(self) -> bool:
        for row in nominations.prior_awards_of(self.session, self.nomination, self.spec):
            if row.award == PriorAwardKind.WINNER:
                raise GuardFailed(
                    f"{self.nomination.name} won the award in edition {row.edition} and may not be "
                    "nominated again",
                    message_zh=f"{self.nomination.name}已获评第{row.edition}届“津工精匠”，不再申报",
                )
        return True

    def shortlist_room(self) -> bool:
        count = count_in_state(self.session, self.campaign.id or 0, State.SHORTLISTED)
        if count >= self.spec.shortlist.max:
            raise GuardFailed(
                f"the shortlist already holds {count}, the most allowed is {self.spec.shortlist.max}",
                message_zh=f"初步候选人已达{count}名，最多{self.spec.shortlist.max}名",
            )
        return True

    def track_allowed(self) -> bool:
        raw = self.data.get("track")
        try:
            track = Track(str(raw))
        except ValueError:
            raise GuardFailed(
                f"vet needs a track: {Track.MAIN.value} or {Track.FINALIST.value} (got {raw!r})",
                message_zh="请选择“津工精匠”或“津工精匠入围奖”",
            ) from None
        if track is Track.FINALIST:
            for row in nominations.prior_awards_of(self.session, self.nomination, self.spec):
                if row.award == PriorAwardKind.FINALIST:
                    raise GuardFailed(
                        f"{self.nomination.name} was a finalist in edition {row.edition} and may "
                        "only be placed in the main track",
                        message_zh=f"{self.nomination.name}曾获第{row.edition}届“津工精匠入围奖”，"
                        "不得再列入入围奖",
                    )
        limit = self.spec.awards.for_track(track)
        placed = self.session.exec(
            select(func.count()).select_from(Nomination).where(
                Nomination.campaign_id == self.campaign.id,
                col(Nomination.state).in_([State.VETTED.value, State.ON_HOLD.value, State.PUBLICIZED.value]),
                Nomination.track == track.value,
            )
        ).one()
        if placed >= limit:
            raise GuardFailed(
                f"the {track.value} track already holds {placed} of {limit}",
                message_zh=f"该奖项正式候选人已满{limit}名",
            )
        return True


def count_in_state(session: Session, campaign_id: int, state: State) -> int:
    return session.exec(
        select(func.count()).select_from(Nomination).where(
            Nomination.campaign_id == campaign_id, Nomination.state == state.value
        )
    ).one()


def history(session: Session, nomination_id: int) -> list[TransitionRecord]:
    query = select(TransitionRecord).where(TransitionRecord.nomination_id == nomination_id)
    return list(session.exec(query.order_by(col(TransitionRecord.id))))


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


# --- stage-level rules: checked when a stage closes -------------------------------------------


def check_shortlist(session: Session, campaign_id: int) -> int:
    """The shortlist must hold min..max candidates when screening closes."""
    spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id))
    count = count_in_state(session, campaign_id, State.SHORTLISTED)
    if not spec.shortlist.min <= count <= spec.shortlist.max:
        raise GuardFailed(
            f"the shortlist holds {count}; it must hold {spec.shortlist.min}–{spec.shortlist.max} "
            "before screening can close",
            message_zh=f"初步候选人为{count}名，须为{spec.shortlist.min}至{spec.shortlist.max}名",
        )
    return count


def check_review(session: Session, campaign_id: int) -> dict[Track, int]:
    """The review must name exactly the configured number per track."""
    spec = campaigns.spec_of(campaigns.get_campaign_by_id(session, campaign_id))
    counts: dict[Track, int] = {}
    for track in Track:
        counts[track] = session.exec(
            select(func.count()).select_from(Nomination).where(
                Nomination.campaign_id == campaign_id,
                Nomination.state == State.VETTED.value,
                Nomination.track == track.value,
            )
        ).one()
    wrong = [t for t in Track if counts[t] != spec.awards.for_track(t)]
    if wrong:
        detail = ", ".join(f"{t.value} {counts[t]} of {spec.awards.for_track(t)}" for t in Track)
        raise GuardFailed(
            f"the review must name exactly the configured counts per track: {detail}",
            message_zh="正式候选人人数与评选名额不符："
            + "，".join(f"{'津工精匠' if t is Track.MAIN else '入围奖'}{counts[t]}/{spec.awards.for_track(t)}"
                       for t in Track),
        )
    return counts


def transition_many(
    session: Session,
    nomination_ids: list[int],
    event: Event | str,
    *,
    actor: Actor,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> list[TransitionRecord]:
    """``transition()`` for many nominations at once (a stage close, a bulk act): the same
    checks row by row, then one compare-and-set UPDATE and one INSERT for the whole batch.
    All or nothing: any refusal or conflict raises and the caller's transaction rolls back.
    Nominations already in the event's result are skipped (no-op), as in ``transition()``."""
    event = _event(event)
    data = dict(data or {})
    reason = reason.strip() if reason else None
    if event in REASON_REQUIRED and not reason:
        raise GuardFailed(f"{event.value} needs a reason", message_zh="请填写理由")
    if not nomination_ids:
        return []
    with session.no_autoflush:
        rows = session.exec(
            select(Nomination).where(col(Nomination.id).in_(nomination_ids)).order_by(col(Nomination.id))
            .execution_options(populate_existing=True)
        ).all()
        missing = set(nomination_ids) - {n.id for n in rows}
        if missing:
            raise NotFound(f"nomination(s) {sorted(missing)} not found")
        now = clock.now()
        todo: list[tuple[Nomination, State, dict[str, Any]]] = []
        for nomination in rows:
            current = State(nomination.state)
            target = destination(event, current)
            if target is None:
                if _already_there(event, current, nomination, data):
                    continue
                raise InvalidTransition(
                    f"cannot {event.value} nomination {nomination.id}: it is {current.value}",
                    message_zh=f"{nomination.name or nomination.id}当前状态为“{STATE_LABELS_ZH[current]}”，"
                    "不能执行此操作",
                )
            adapter = NominationAdapter(state=current, guards=_GuardContext(session, nomination, event, data).guards())
            new_state = run(adapter, event)
            values = {"state": new_state, "version": nomination.version + 1, "updated_at": now,
                      **_effects(event, data, now)}
            todo.append((nomination, current, values))
        if not todo:
            return []
        params = [{"w_id": n.id, "w_version": n.version, **{f"b_{k}": v for k, v in values.items()}}
                  for n, _, values in todo]
        result = session.execute(_compare_and_set(frozenset(todo[0][2])), params)
        if session.get_bind().dialect.supports_sane_multi_rowcount and result.rowcount != len(todo):  # type: ignore[attr-defined]
            raise ConcurrentChange(
                f"{len(todo) - result.rowcount} of {len(todo)} nominations were changed by somebody else "  # type: ignore[attr-defined]
                "at the same time; nothing was changed, reload and try again",
                message_zh="部分申报已被他人同时修改，本次操作未生效，请刷新后重试",
            )
        clean = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool | None)}
        records = [
            TransitionRecord(nomination_id=n.id or 0, campaign_id=n.campaign_id, event=event.value,
                             from_state=current.value, to_state=values["state"].value, version=values["version"],
                             actor=str(actor), reason=reason, at=now, data=clean)
            for n, current, values in todo
        ]
        ids = session.execute(
            _INSERT_RECORD_MANY, [r.model_dump(exclude={"id"}) for r in records]
        ).scalars().all()
        for record, record_id in zip(records, ids, strict=True):
            record.id = record_id
        for nomination, _, values in todo:
            for attr, value in values.items():
                set_committed_value(nomination, attr, value)
    for (nomination, _, _), record in zip(todo, records, strict=True):
        hooks.dispatch(session, nomination, record)
    return records


def move_all(
    session: Session, campaign_id: int, source: State, event: Event, *, actor: Actor, reason: str | None = None,
    batch: int = 500,
) -> int:
    """Fire ``event`` on every nomination in ``source`` (a stage close). Returns how many moved."""
    ids = [i for i in session.exec(
        select(Nomination.id).where(Nomination.campaign_id == campaign_id, Nomination.state == source.value)
        .order_by(col(Nomination.id))
    ).all() if i is not None]
    moved = 0
    for start in range(0, len(ids), batch):
        moved += len(transition_many(session, ids[start:start + batch], event, actor=actor, reason=reason))
    return moved
