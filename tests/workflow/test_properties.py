"""Random sequences of events never leave the diagram, and the log replays to the state."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import JingongError
from nominations.models import Nomination
from nominations.states import State
from tests.factories import OFFICE, create_draft
from workflow import queries
from workflow import service as workflow
from workflow.machine import Event, edges

ALLOWED = {(s, e): d for s, e, d in edges()}

steps = st.lists(
    st.tuples(
        st.sampled_from(list(Event)),
        st.sampled_from(["main", "finalist", "bogus"]),
        st.sampled_from([None, "", "理由"]),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_random_events_stay_on_the_diagram(uow, campaign, spec, clock, sequence):
    with uow() as session:
        nomination_id = create_draft(session, campaign, spec).id
    state = State.DRAFT
    for event, track, reason in sequence:
        try:
            with uow() as session:
                workflow.transition(session, nomination_id, event, actor=OFFICE, reason=reason,
                                    data={"track": track})
        except JingongError:
            pass
        with uow() as session:
            new = State(session.get(Nomination, nomination_id).state)
        assert new == state or ALLOWED.get((state, event)) == new, f"{state} --{event}--> {new}"
        state = new
    with uow() as session:
        log = queries.history(session, nomination_id)
        assert workflow.replay(log) == state
        assert [r.version for r in log] == list(range(2, len(log) + 2))
