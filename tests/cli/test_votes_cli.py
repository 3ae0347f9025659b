"""`jingong votes verify` catches a tampered counter (exit 1); `tally`, `invalidate`, `flags`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from campaigns import service as campaigns
from config.campaign import load_campaign
from config.settings import Settings
from core.clock import ManualClock, use_clock
from nominations.states import State
from storage.db import make_engine, unit_of_work
from storage.migrate import upgrade
from tests.cli.test_cli import run
from tests.conftest import beijing
from tests.factories import create_nomination
from voting import casting
from voting.models import VoterIdentity
from wiring.tables import metadata


def test_votes_commands(tmp_path: Path) -> None:
    assert run(tmp_path, "init").returncode == 0
    settings = Settings.model_validate({"JINGONG_DATA_DIR": str(tmp_path / "var")})
    engine = make_engine(settings.effective_database_url)
    upgrade(engine, metadata)
    spec = load_campaign()
    with use_clock(ManualClock(beijing(2021, 5, 1, 10, 0))) as clock:
        with unit_of_work(engine) as session:
            campaign = campaigns.get_campaign(session)
            nomination = create_nomination(session, campaign, spec, State.SHORTLISTED, name="张师傅")
            voters = [VoterIdentity(campaign_id=campaign.id or 0, kind="email", identity_hash=f"x{i}",
                                    created_at=clock.now(), created_minute=0) for i in range(2)]
            session.add_all(voters)
        clock.set(beijing(2021, 7, 3, 9, 0))
        for voter in voters:
            casting.cast_vote(engine, campaign.id or 0, nomination.id or 0, voter.id or 0, "10.1.1.1", settings)
    ok = run(tmp_path, "votes", "verify")
    assert ok.returncode == 0 and "every counter matches the vote rows (2 valid vote(s))" in ok.stdout
    assert "张师傅" in run(tmp_path, "votes", "tally").stdout
    with unit_of_work(engine) as session:
        session.execute(text("UPDATE vote_counter SET votes = 50"))
    tampered = run(tmp_path, "votes", "verify")
    assert tampered.returncode == 1
    assert f"MISMATCH nomination {nomination.id}: counter 50, rows 2" in tampered.stderr
    no_reason = run(tmp_path, "votes", "invalidate", "1")
    assert no_reason.returncode != 0 and "--reason" in no_reason.stderr
    missing = run(tmp_path, "votes", "invalidate", "999", "--reason", "test")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no vote 999"
    assert "flag(s)" in run(tmp_path, "votes", "flags").stdout
    engine.dispose()
