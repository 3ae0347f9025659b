"""The public pages from memory (web/pagecache.py, storage/public_version.py): rendered once per
public version, an act shows on the next request, validators and 304s, HEAD, nothing personal shared;
admission's bounded wait (web/admission.py) and the health check outside it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from campaigns.models import Campaign
from config.campaign import CampaignSpec
from core.clock import ManualClock
from nominations import public as public_lists
from nominations.models import Nomination
from nominations.states import State
from storage import public_version
from storage.db import make_engine, unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination
from tests.voting.conftest import candidates, code_from_outbox, fresh_limits  # noqa: F401 - fixtures

VOTING = beijing(2021, 7, 2, 9, 0)


def shortlisted(engine: Engine, campaign: Campaign, spec: CampaignSpec, name: str) -> Nomination:
    with unit_of_work(engine) as session:
        return create_nomination(session, campaign, spec, State.SHORTLISTED, name=name)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per rendering of the candidates' deeds (the page and the JSON)."""
    calls: list[int] = []
    real = public_lists.deeds_rows

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(public_lists, "deeds_rows", counting)
    return calls


def test_a_committee_act_shows_on_the_next_request(client: TestClient, engine: Engine, campaign: Campaign,
                                                   spec: CampaignSpec, clock: ManualClock, renders: list[int],
                                                   as_member: Callable[..., Any]) -> None:
    clock.set(VOTING)
    n = shortlisted(engine, campaign, spec, "李工匠")
    first = client.get("/candidates")
    assert "李工匠" in first.text
    again = client.get("/candidates")
    assert again.text == first.text and again.headers["etag"] == first.headers["etag"]
    assert len(renders) == 1, "the second request is answered from memory"
    member, csrf = as_member("office")
    fired = member.post(f"/api/committee/nominations/{n.id}/events", json={"event": "withdraw", "reason": "本人申请"},
                        headers={"x-csrf-token": csrf})
    assert fired.status_code == 200, fired.text
    after = client.get("/candidates")
    assert "李工匠" not in after.text and after.headers["etag"] != first.headers["etag"]
    assert client.get("/api/public/candidates").json() == []


def test_quiet_writes_keep_the_version(engine: Engine, campaign: Campaign, spec: CampaignSpec) -> None:
    store = public_version.store_for(engine)

    def now() -> str | None:
        return asyncio.run(store.current())

    before = now()
    with unit_of_work(engine, readonly=True) as session:
        public_lists.deeds_rows(session, campaign)
    assert now() == before, "a read moves nothing"
    shortlisted(engine, campaign, spec, "王师傅")
    assert now() != before, "a nomination written moves the version"
    assert public_version.moves_version({"vote", "vote_counter"}) is False
    assert public_version.moves_version({"vote", "nomination"}) is True
    assert public_version.moves_version({"a_table_added_later"}) is True


def test_another_process_on_the_same_sqlite_file_sees_a_move(sqlite_engine: Engine) -> None:
    """Every process of the host (the CLI, the scheduler) moves the same file next to the database."""
    other = make_engine(str(sqlite_engine.url))  # another process's engine: same database
    try:
        mine, theirs = public_version.store_for(sqlite_engine), public_version.store_for(other)
        before = asyncio.run(mine.current())
        theirs.bump()
        assert asyncio.run(mine.current()) != before
    finally:
        other.dispose()


