"""Next year from this year: `jingong campaign new`, and the registry filled at the commendation."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from config.campaign import DEFAULT_CAMPAIGN_FILE, StageName, Track, load_campaign
from config.next_edition import chinese_number, next_edition, one_year_later
from core.clock import ManualClock, use_clock
from core.errors import GuardFailed
from nominations.models import PriorAward
from nominations.states import State
from stages import service as stages
from tests.factories import OFFICE, create_draft, create_nomination
from wiring.bootstrap import enter_registry_at_commendation
from workflow import hooks
from workflow import service as workflow
from workflow.machine import Event

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("n", "text"), [(1, "一"), (3, "三"), (4, "四"), (10, "十"), (13, "十三"), (24, "二十四")])
def test_chinese_edition_numbers(n: int, text: str) -> None:
    assert chinese_number(n) == text


def test_29_february_moves_to_28() -> None:
    assert one_year_later(datetime(2024, 2, 29, 18, 0)) == datetime(2025, 2, 28, 18, 0)


def test_next_edition_moves_the_expected_decision_day_and_keeps_the_documents_wording() -> None:
    from datetime import date

    from documents.notices import wording

    this = load_campaign()
    _, spec = next_edition(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"), "jingong-2021.toml")
    assert this.publicity.decision_expected == date(2021, 11, 30)
    assert spec.publicity.decision_expected == date(2022, 11, 30)
    assert spec.publicity.issuers == this.publicity.issuers and spec.publicity.channels == this.publicity.channels
    # the new notice has no number yet: the documents cite it without one
    assert wording(spec).basis == "《关于开展第四届“津工精匠”评选活动的通知》"
    assert wording(spec).edition == "江津区第四届“津工精匠”"


def test_next_edition_moves_every_instant_one_year_and_advances_the_title() -> None:
    this = load_campaign()
    text, spec = next_edition(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"), "jingong-2021.toml")
    assert (spec.edition, spec.slug, spec.name) == (4, "jingong-2022", "江津区第四届“津工精匠”评选活动")
    def wall(instant: datetime) -> datetime:
        return this.to_local(instant).replace(tzinfo=None)

    for old, new in zip(this.stages, spec.stages, strict=True):
        assert new.name == old.name
        assert wall(new.opens) == one_year_later(wall(old.opens))
        assert wall(new.closes) == one_year_later(wall(old.closes))
    # the deadline stays 31 May 18:00 Beijing; promotion, which ended on 1 January 2022, ends on 1 January 2023
    assert spec.stage(StageName.NOMINATION).closes == datetime(2022, 5, 31, 10, 0, tzinfo=UTC)
    assert spec.to_local(spec.stage(StageName.PROMOTION).closes).strftime("%Y-%m-%d %H:%M") == "2023-01-01 00:00"
    assert "2022年5月31日18:00时" in spec.stage(StageName.NOMINATION).description
    # the prior editions default to every earlier one; the notice number is the office's to fill in
    assert spec.rules.prior_editions is None and spec.notice_ref == "" and spec.issued_on == "2022-03-26"
    assert spec.notice_file == ""  # last year's notice is not offered as this year's
    # what is not about time is kept, comments included
    assert [u.name for u in spec.units] == [u.name for u in this.units]
    assert "# 附件1 推荐计划表" in text


def test_campaign_new_command_writes_a_file_the_loader_accepts(tmp_path: Path) -> None:
    out = tmp_path / "next.toml"
    run = [sys.executable, "-m", "cli.main", "campaign", "new", str(DEFAULT_CAMPAIGN_FILE), "--out", str(out)]
    done = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "JINGONG_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "jingong-2022" in done.stdout and "2022-05-31 18:00" in done.stdout
    assert load_campaign(out).edition == 4
    again = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "JINGONG_DATA_DIR": str(tmp_path)})
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "--force" in again.stderr


def test_a_2021_winner_is_refused_in_2022_without_any_csv(uow, campaign, spec, clock) -> None:
    hooks.on_transition(enter_registry_at_commendation)  # as wiring.bootstrap does in every process
    try:
        with uow() as session:
            winner = create_nomination(session, campaign, spec, State.COMMENDED, name="张精匠")
            finalist = create_nomination(session, campaign, spec, State.COMMENDED, track=Track.FINALIST,
                                         name="李入围")
            rows = session.exec(select(PriorAward).order_by(PriorAward.name)).all()
            assert {(r.name, r.edition, r.award) for r in rows} == {("张精匠", 3, "winner"), ("李入围", 3, "finalist")}
            birth = winner.birth_date
            assert finalist.track == Track.FINALIST.value
        _, next_spec = next_edition(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
        with use_clock(ManualClock(datetime(2022, 5, 1, 2, 0, tzinfo=UTC))), uow() as session:
            campaign_2022 = stages.load_campaign(session, next_spec)
            again = create_draft(session, campaign_2022, next_spec, name="张精匠", birth_date=birth)
            with pytest.raises(GuardFailed, match="edition 3"):
                workflow.transition(session, again.id or 0, Event.SUBMIT, actor=OFFICE)
        with use_clock(ManualClock(datetime(2022, 5, 1, 2, 0, tzinfo=UTC))), uow() as session:
            campaign_2022 = stages.load_campaign(session, next_spec)
            other = create_draft(session, campaign_2022, next_spec, name="王新人")
            workflow.transition(session, other.id or 0, Event.SUBMIT, actor=OFFICE)
            assert other.state == State.SUBMITTED.value
    finally:
        hooks.remove_listener(enter_registry_at_commendation)
