"""Every edge of the diagram, every refusal, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from config.campaign import Track
from core.actor import Actor
from core.errors import ConcurrentChange, DeadlinePassed, GuardFailed, InvalidTransition, NotFound
from nominations.models import Nomination, PriorAward, PriorAwardKind
from nominations.states import State
from tests.conftest import beijing
from tests.factories import OFFICE, PATHS, create_draft, create_nomination, event_data, open_review
from workflow import guards, hooks, queries
from workflow import service as workflow
from workflow.machine import REASON_REQUIRED, Event, allowed_events, edges
from workflow.models import TransitionRecord

EDGES = edges()
INVALID = [(s, e) for s in State for e in Event if e not in allowed_events(s)]


def _data(event: Event) -> dict[str, Any]:
    return event_data(event, Track.MAIN)


def _log(session, nomination_id: int) -> list[TransitionRecord]:
    return queries.history(session, nomination_id)


@pytest.mark.parametrize(("source", "event", "dest"), EDGES, ids=[f"{s}-{e}" for s, e, _ in EDGES])
def test_every_edge(uow, campaign, spec, clock, source, event, dest):
    with uow() as session:
        n = create_nomination(session, campaign, spec, source)
        before = len(_log(session, n.id))
        version = n.version
    if event is Event.SUBMIT:
        clock.set(beijing(2021, 5, 31, 17, 0))
    if event is Event.RECONSIDER:
        with uow() as session:
            open_review(session, campaign)
    reason = "理由" if event in REASON_REQUIRED else None
    with uow() as session:
        record = workflow.transition(session, n.id, event, actor=OFFICE, reason=reason, data=_data(event))
    assert record is not None
    with uow() as session:
        row = session.get(Nomination, n.id)
        log = _log(session, n.id)
    assert row.state == dest
    assert row.version == version + 1
    assert len(log) == before + 1
    last = log[-1]
    assert (last.from_state, last.to_state, last.event) == (source.value, dest.value, event.value)
    assert last.actor == str(OFFICE) and last.reason == reason and last.at == clock.now()
    assert workflow.replay(log) == dest


@pytest.mark.parametrize(("source", "event"), INVALID, ids=[f"{s}-{e}" for s, e in INVALID])
def test_every_invalid_event_is_refused_or_a_noop(uow, campaign, spec, clock, source, event):
    with uow() as session:
        n = create_nomination(session, campaign, spec, source)
        version, before = n.version, len(_log(session, n.id))
    already_there = source in {d for _, e, d in EDGES if e is event}
    with uow() as session:
        if already_there:
            assert workflow.transition(session, n.id, event, actor=OFFICE, reason="r", data=_data(event)) is None
        else:
            with pytest.raises(InvalidTransition, match=f"cannot {event.value}"):
                workflow.transition(session, n.id, event, actor=OFFICE, reason="r", data=_data(event))
    with uow() as session:
        row = session.get(Nomination, n.id)
        assert (row.state, row.version, len(_log(session, n.id))) == (source, version, before)


def test_repeating_an_event_does_nothing(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SHORTLISTED)
        version = n.version
    with uow() as session:
        assert workflow.transition(session, n.id, Event.SHORTLIST, actor=OFFICE) is None
    with uow() as session:
        assert session.get(Nomination, n.id).version == version
        assert [r.event for r in _log(session, n.id)].count("shortlist") == 1


def test_unknown_event_and_nomination(uow, campaign, spec, clock):
    with uow() as session:
        n = create_draft(session, campaign, spec)
    with pytest.raises(InvalidTransition, match="unknown event 'promote'"), uow() as session:
        workflow.transition(session, n.id, "promote", actor=OFFICE)
    with pytest.raises(NotFound), uow() as session:
        workflow.transition(session, 9999, Event.SUBMIT, actor=OFFICE)


# --- guards -----------------------------------------------------------------------------------


def test_incomplete_form_cannot_be_submitted(uow, campaign, spec, clock):
    with uow() as session:
        n = create_draft(session, campaign, spec, deeds=None, phone=None)
    with pytest.raises(GuardFailed) as info, uow() as session:
        workflow.transition(session, n.id, Event.SUBMIT, actor=Actor.applicant())
    assert "deeds is required" in str(info.value) and "phone is required" in str(info.value)
    assert "主要事迹" in info.value.message_zh
    with uow() as session:
        assert session.get(Nomination, n.id).state == State.DRAFT


def test_deeds_over_500_characters_cannot_be_submitted(uow, campaign, spec, clock):
    with uow() as session:
        n = create_draft(session, campaign, spec)
        n.deeds = "匠" * 501  # written past the draft check, as an old draft might be
        session.add(n)
    with pytest.raises(GuardFailed, match="501 characters"), uow() as session:
        workflow.transition(session, n.id, Event.SUBMIT, actor=Actor.applicant())


@pytest.mark.parametrize(
    ("instant", "accepted"),
    [
        (beijing(2021, 5, 31, 17, 59, 59, 999000), True),
        (beijing(2021, 5, 31, 18, 0, 0, 0), False),
        (beijing(2021, 5, 31, 18, 0, 0, 1000), False),
        (beijing(2021, 4, 1, 0, 0, 0, 0), True),
        (beijing(2021, 3, 31, 23, 59, 59, 999000), False),
    ],
)
def test_submission_window_by_the_clock(uow, campaign, spec, clock, instant, accepted):
    with uow() as session:
        n = create_draft(session, campaign, spec)
    clock.set(instant)
    if accepted:
        with uow() as session:
            assert workflow.transition(session, n.id, Event.SUBMIT, actor=Actor.applicant()) is not None
    else:
        with pytest.raises(GuardFailed) as info, uow() as session:
            workflow.transition(session, n.id, Event.SUBMIT, actor=Actor.applicant())
        if instant > beijing(2021, 5, 1):
            assert isinstance(info.value, DeadlinePassed)
            assert "2021-05-31 18:00:00" in str(info.value) and "北京时间2021-05-31 18:00:00" in info.value.message_zh
        with uow() as session:
            assert session.get(Nomination, n.id).state == State.DRAFT


def test_personal_extension_is_honoured(uow, campaign, spec, clock):
    with uow() as session:
        n = create_draft(session, campaign, spec)
        n.extension_until = beijing(2021, 6, 2, 12, 0)
        session.add(n)
    clock.set(beijing(2021, 6, 2, 11, 59))
    with uow() as session:
        assert workflow.transition(session, n.id, Event.SUBMIT, actor=Actor.applicant())


def test_prior_winner_is_refused_with_the_reason(uow, campaign, spec, clock):
    with uow() as session:
        n = create_draft(session, campaign, spec, name="李匠")
        session.add(PriorAward(edition=2, award=PriorAwardKind.WINNER, name="李匠", birth_date=n.birth_date))
    with pytest.raises(GuardFailed, match="won the award in edition 2") as info, uow() as session:
        workflow.transition(session, n.id, Event.SUBMIT, actor=Actor.applicant())
    assert "第2届" in info.value.message_zh


def test_namesake_with_another_birth_date_is_not_a_prior_winner(uow, campaign, spec, clock):
    with uow() as session:
        n = create_draft(session, campaign, spec, name="王师傅")
        other = n.birth_date - timedelta(days=400)
        session.add(PriorAward(edition=1, award=PriorAwardKind.WINNER, name="王师傅", birth_date=other))
    with uow() as session:
        assert workflow.transition(session, n.id, Event.SUBMIT, actor=Actor.applicant())


def test_prior_finalist_never_enters_the_finalist_track(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.VOTED, name="赵入围")
        session.add(PriorAward(edition=1, award=PriorAwardKind.FINALIST, name="赵入围"))
    with pytest.raises(GuardFailed, match="only be placed in the main track"), uow() as session:
        workflow.transition(session, n.id, Event.VET, actor=OFFICE, data={"track": "finalist"})
    with uow() as session:
        workflow.transition(session, n.id, Event.VET, actor=OFFICE, data={"track": "main"})
        assert session.get(Nomination, n.id).track == "main"


def test_vet_needs_a_known_track(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.VOTED)
    with pytest.raises(GuardFailed, match="vet needs a track"), uow() as session:
        workflow.transition(session, n.id, Event.VET, actor=OFFICE, data={"track": "bronze"})


def test_reason_is_required_where_the_spec_says(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    with pytest.raises(GuardFailed, match="reject needs a reason"), uow() as session:
        workflow.transition(session, n.id, Event.REJECT, actor=OFFICE, reason="   ")


def test_shortlist_and_track_counts_are_capped(sqlite_engine, spec, clock):
    from stages import service as stages
    from storage.db import unit_of_work

    with unit_of_work(sqlite_engine) as session:
        campaign = stages.load_campaign(session, spec)
        for _ in range(spec.shortlist.max):
            create_nomination(session, campaign, spec, State.SHORTLISTED)
        extra = create_nomination(session, campaign, spec, State.SCREENED)
    with pytest.raises(GuardFailed, match="already holds 25"), unit_of_work(sqlite_engine) as session:
        workflow.transition(session, extra.id, Event.SHORTLIST, actor=OFFICE)
    with unit_of_work(sqlite_engine) as session:
        guards.check_shortlist(session, campaign.id)
        workflow.move_all(session, campaign.id, State.SHORTLISTED, Event.RECORD_VOTES, actor=OFFICE)
        voted = workflow_nominations(session, State.VOTED)
        for n in voted[:10]:
            workflow.transition(session, n.id, Event.VET, actor=OFFICE, data={"track": "main"})
    with pytest.raises(GuardFailed, match="main track already holds 10 of 10"), unit_of_work(sqlite_engine) as s:
        workflow.transition(s, voted[10].id, Event.VET, actor=OFFICE, data={"track": "main"})
    with unit_of_work(sqlite_engine) as s:
        assert workflow.transition(s, voted[10].id, Event.VET, actor=OFFICE, data={"track": "finalist"})


def test_a_batch_counts_its_own_rows_against_the_caps(uow, campaign, spec, clock):
    """Every row of a batch is planned before any is written: the rows ahead of it count."""
    with uow() as session:
        for _ in range(spec.shortlist.max - 2):
            create_nomination(session, campaign, spec, State.SHORTLISTED)
        screened = [create_nomination(session, campaign, spec, State.SCREENED).id for _ in range(3)]
        voted = [create_nomination(session, campaign, spec, State.VOTED).id for _ in range(spec.awards.main + 1)]
    with pytest.raises(GuardFailed, match=f"nomination {screened[2]}: the shortlist already holds 25") as refused, \
            uow() as session:
        workflow.transition_many(session, screened, Event.SHORTLIST, actor=OFFICE)
    assert refused.value.message_zh.startswith(f"申报编号{screened[2]}：")
    with pytest.raises(GuardFailed, match="main track already holds 10 of 10"), uow() as session:
        workflow.transition_many(session, voted, Event.VET, actor=OFFICE, data={"track": "main"})
    with uow() as session:  # all or nothing
        assert queries.count_in_state(session, campaign.id, State.SHORTLISTED) == spec.shortlist.max - 2
        assert queries.count_in_state(session, campaign.id, State.VETTED) == 0
        assert len(workflow.transition_many(session, screened[:2], Event.SHORTLIST, actor=OFFICE)) == 2
        assert len(workflow.transition_many(session, voted[:10], Event.VET, actor=OFFICE, data={"track": "main"})) == 10


def workflow_nominations(session, state: State) -> list[Nomination]:
    return list(session.exec(select(Nomination).where(Nomination.state == state).order_by(Nomination.id)))


def test_stage_level_counts(uow, campaign, spec, clock):
    with uow() as session:
        for _ in range(19):
            create_nomination(session, campaign, spec, State.SHORTLISTED)
    with pytest.raises(GuardFailed, match="the shortlist holds 19; it must hold 20–25"), uow() as session:
        guards.check_shortlist(session, campaign.id)
    with uow() as session:
        create_nomination(session, campaign, spec, State.SHORTLISTED)
        assert guards.check_shortlist(session, campaign.id) == 20
    with uow() as session:
        for track in (Track.MAIN, Track.FINALIST):
            for _ in range(10):
                create_nomination(session, campaign, spec, State.VETTED, track=track)
        assert guards.check_review(session, campaign.id) == {Track.MAIN: 10, Track.FINALIST: 10}
        disq = session.exec(select(Nomination).where(Nomination.state == State.VETTED)).first()
        workflow.transition(session, disq.id, Event.FAIL_VETTING, actor=OFFICE, reason="政审未通过")
        with pytest.raises(GuardFailed, match="exactly the configured counts"):
            guards.check_review(session, campaign.id)


def test_move_all_moves_only_the_source_state(uow, campaign, spec, clock):
    with uow() as session:
        left = [create_nomination(session, campaign, spec, State.SCREENED) for _ in range(3)]
        kept = create_nomination(session, campaign, spec, State.SHORTLISTED)
        moved = workflow.move_all(session, campaign.id, State.SCREENED, Event.PASS_OVER, actor=OFFICE)
        assert moved == 3
        assert workflow.move_all(session, campaign.id, State.SCREENED, Event.PASS_OVER, actor=OFFICE) == 0
    with uow() as session:
        assert {session.get(Nomination, n.id).state for n in left} == {State.NOT_SHORTLISTED}
        assert session.get(Nomination, kept.id).state == State.SHORTLISTED


# --- concurrency and atomicity ----------------------------------------------------------------


def test_stale_version_is_a_conflict(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
        seen = n.version
    with uow() as session:
        workflow.transition(session, n.id, Event.PASS_SCREENING, actor=OFFICE, expected_version=seen)
    with pytest.raises(ConcurrentChange, match="changed meanwhile"), uow() as session:
        workflow.transition(session, n.id, Event.REJECT, actor=OFFICE, reason="x", expected_version=seen)
    with uow() as session:
        assert session.get(Nomination, n.id).state == State.SCREENED


def test_compare_and_set_refuses_a_write_behind_its_back(uow, campaign, spec, clock, monkeypatch):
    """Another writer commits between the service's read and its write: the CAS finds no row."""
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SCREENED)
    original = guards.Rules.shortlist_room

    def concurrent_writer(self):
        self.session.execute(text("UPDATE nomination SET version = version + 1 WHERE id = :id"), {"id": n.id})
        return original(self)

    monkeypatch.setattr(guards.Rules, "shortlist_room", concurrent_writer)
    with pytest.raises(ConcurrentChange, match="at the same time"), uow() as session:
        workflow.transition(session, n.id, Event.SHORTLIST, actor=OFFICE)
    with uow() as session:
        row = session.get(Nomination, n.id)
        assert (row.state, len(_log(session, n.id))) == (State.SCREENED, 2)


def test_hook_runs_inside_the_transaction_and_rolls_back_with_it(uow, campaign, spec, clock):
    seen: list[tuple[str, str]] = []

    def listener(session, nomination, record):
        seen.append((record.from_state, record.to_state))
        raise RuntimeError("mail template broken")

    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    hooks.on_transition(listener)
    try:
        with pytest.raises(RuntimeError), uow() as session:
            workflow.transition(session, n.id, Event.PASS_SCREENING, actor=OFFICE)
    finally:
        hooks.remove_listener(listener)
    assert seen == [("submitted", "screened")]
    with uow() as session:
        assert session.get(Nomination, n.id).state == State.SUBMITTED
        assert [r.event for r in _log(session, n.id)] == ["submit"]


def test_transition_log_is_append_only(uow, campaign, spec, clock):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.SUBMITTED)
    with pytest.raises(DBAPIError, match="append-only"), uow() as session:
        session.execute(text("UPDATE transition_log SET reason = 'edited' WHERE nomination_id = :id"), {"id": n.id})
    with pytest.raises(DBAPIError, match="append-only"), uow() as session:
        session.execute(text("DELETE FROM transition_log WHERE nomination_id = :id"), {"id": n.id})


def test_paths_cover_every_state():
    assert set(PATHS) == set(State)


def test_no_submission_without_a_photo_whoever_submits(uow, campaign, spec, clock):
    """The public pages show the photo: the state machine refuses a submission (or a resubmission)
    without one, whoever fires it; a late one is told it is late first."""
    with uow() as session:
        bare = create_draft(session, campaign, spec, photo=False)
        returned = create_nomination(session, campaign, spec, State.RETURNED)
        returned.photo_attachment_id = None
        session.add(returned)
    with pytest.raises(GuardFailed) as info, uow() as session:
        workflow.transition(session, bare.id, Event.SUBMIT, actor=OFFICE)
    assert info.value.message_zh == "请上传一寸近期免冠照片"
    with pytest.raises(GuardFailed) as info, uow() as session:
        workflow.transition(session, returned.id, Event.RESUBMIT, actor=Actor.applicant())
    assert info.value.message_zh == "请上传一寸近期免冠照片"
    clock.set(beijing(2021, 5, 31, 18, 0))
    with pytest.raises(DeadlinePassed), uow() as session:
        workflow.transition(session, bare.id, Event.SUBMIT, actor=Actor.applicant())
    with uow() as session:
        assert session.get(Nomination, bare.id).state == State.DRAFT
        assert session.get(Nomination, returned.id).state == State.RETURNED
