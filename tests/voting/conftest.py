from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from anyio.from_thread import start_blocking_portal
from sqlalchemy import Engine
from sqlmodel import select

from campaigns.models import Campaign
from config.campaign import CampaignSpec
from config.settings import Settings
from core.clock import ManualClock
from nominations.states import State
from notifications.models import MailTemplate, OutboxMail
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination
from voting import casting, codes, identities, limits, windows
from voting.ballots import Receipt
from voting.group import GroupWriter
from voting.lane import VoteLane
from wiring.bootstrap import install_voting

VOTING_OPENS = beijing(2021, 7, 1, 0, 0)
VOTING_CLOSES = beijing(2021, 7, 11, 0, 0)


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    install_voting()  # as bootstrap() does in every process
    windows.clear_caches()
    limits.reset_limits()
    yield
    windows.clear_caches()
    limits.reset_limits()


def voting_settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings.model_validate({
        "JINGONG_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "voting-test-secret-" + "y" * 40,
        "VOTE_CODE_INTERVAL_SECONDS": 0,
        **changes,
    })


class Cast(Protocol):
    def __call__(self, campaign_id: int, nomination_id: int, voter_id: int, ip: str,
                 settings: Settings | None = None) -> Receipt: ...


@pytest.fixture(params=["service", "lane"])
def cast(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Cast]:
    """Casts a vote through ``voting.casting.cast_vote``, or through the web service's batching lane
    (the vote lane on PostgreSQL, the group writer on SQLite) on an event loop of its own, as the
    web service does. Calls from several threads run as concurrent votes on that loop (and are
    written together when they meet in the queue)."""
    if request.param == "service":
        yield functools.partial(casting.cast_vote, engine)
        return
    opener = VoteLane.open if engine.dialect.name == "postgresql" else GroupWriter.open
    with start_blocking_portal() as portal:
        lane = portal.call(opener, engine)

        def through_lane(campaign_id: int, nomination_id: int, voter_id: int, ip: str,
                         settings: Settings | None = None) -> Receipt:
            return portal.call(lane.cast, campaign_id, nomination_id, voter_id, ip, settings)

        try:
            yield through_lane
        finally:
            portal.call(lane.close)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return voting_settings(tmp_path)


@pytest.fixture
def candidates(engine: Engine, campaign: Campaign, spec: CampaignSpec, clock: ManualClock) -> list[int]:
    """Three shortlisted candidates and one merely screened; the clock on 2 July, voting open."""
    with unit_of_work(engine) as session:
        ids = [create_nomination(session, campaign, spec, State.SHORTLISTED, name=f"候选人{i}").id for i in range(3)]
        ids.append(create_nomination(session, campaign, spec, State.SCREENED, name="未入围").id)
    clock.set(beijing(2021, 7, 2, 9, 0))
    return [int(i) for i in ids if i is not None]


def code_from_outbox(engine: Engine, address: str) -> str:
    """The latest code mailed to ``address``, read as the voter would (the mail's text)."""
    import re

    with unit_of_work(engine, readonly=True) as session:
        mails = session.exec(select(OutboxMail).where(OutboxMail.template == MailTemplate.VOTE_CODE.value)).all()
    mine = [m for m in mails if m.recipients == [address]]
    assert mine, f"no code mailed to {address}"
    found = re.search(r"验证码为：(\d{6})", mine[-1].text_body)
    assert found, mine[-1].text_body
    return found.group(1)


@pytest.fixture
def verified(engine: Engine, campaign: Campaign, settings: Settings) -> Callable[[str], int]:
    """A voter verified by email: returns the voter id."""
    def make(address: str) -> int:
        cid = campaign.id or 0
        codes.request_code(engine, cid, "email", address, "10.0.0.1", settings)
        token = codes.confirm_code(engine, cid, "email", address, code_from_outbox(engine, address), "10.0.0.1",
                                    settings)
        return identities.voter_of_token(token, cid, settings)

    return make
