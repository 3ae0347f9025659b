"""The vote monitor under concurrency: two scans at once write each flag once."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select

from campaigns.models import Campaign
from core.clock import ManualClock
from storage.db import unit_of_work
from tests.voting.test_codes import _at_once
from voting import monitor
from voting.models import VoteFlag, VoterIdentity


def test_two_flag_scans_at_once_write_each_flag_once(engine: Engine, campaign: Campaign, candidates: list[int],
                                                     clock: ManualClock) -> None:
    """Two members opening the flags at once: the second insert of a flag does nothing."""
    cid = campaign.id or 0
    with unit_of_work(engine) as session:  # 61 new voters in one minute: one fresh-identities flag
        for i in range(61):
            session.add(VoterIdentity(campaign_id=cid, kind="email", identity_hash=f"scan{i}", created_at=clock.now(),
                                      created_minute=7))

    def scan(_: int) -> int:
        with unit_of_work(engine) as session:
            return monitor.scan_flags(session, cid)

    assert sorted(_at_once(4, scan)) == [0, 0, 0, 1]
    with unit_of_work(engine, readonly=True) as session:
        assert len(session.exec(select(VoteFlag)).all()) == 1
