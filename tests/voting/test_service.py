"""The voting rules on both databases: one vote per voter per candidate per Beijing day, the
window to the millisecond, the per-day cap, verification and its lock, the tally's integrity.
The rules of casting run through both doors on PostgreSQL (``cast``): the service, and the vote lane
the web service uses there."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from audit.models import AuditEvent
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName
from config.secrets import keyed_hash
from config.settings import Settings
from core.actor import Actor
from core.clock import ManualClock
from core.errors import Conflict, DeadlinePassed, GuardFailed, NotFound, RateLimited, ValidationFailed
from stages import jobs
from stages import service as stages
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.voting.conftest import VOTING_CLOSES, VOTING_OPENS, Cast, code_from_outbox, voting_settings
from voting import casting, codes, identities, monitor, tally
from voting.models import FlagKind, Vote, VoterDay, VoterIdentity
from voting.sms import ConsoleSms, get_gateway

OFFICE = Actor.system("office-test")


def test_second_vote_same_day_refused_next_day_accepted(cast: Cast, engine: Engine, campaign: Campaign,
                                                        candidates: list[int], verified: Callable[[str], int],
                                                        settings: Settings, clock: ManualClock) -> None:
    cid, first = campaign.id or 0, candidates[0]
    voter = verified("li@example.cn")
    receipt = cast(cid, first, voter, "10.0.0.1", settings)
    assert receipt.day == "2021-07-02" and receipt.candidates_left_today == 24
    with pytest.raises(Conflict) as refused:
        cast(cid, first, voter, "10.0.0.1", settings)
    assert "今天（2021-07-02）已为该候选人投过一票" in (refused.value.message_zh or "")
    # 23:59:59.999 Beijing is still the same day; midnight is the next
    clock.set(beijing(2021, 7, 2, 23, 59, 59) + timedelta(milliseconds=999))
    with pytest.raises(Conflict):
        cast(cid, first, voter, "10.0.0.1", settings)
    clock.set(beijing(2021, 7, 3, 0, 0))
    assert cast(cid, first, voter, "10.0.0.1", settings).day == "2021-07-03"
    with unit_of_work(engine, readonly=True) as session:
        assert tally.counters(session, cid) == {first: 2} == tally.recount(session, cid)
        assert tally.verify(session, cid) == []
        rows = session.exec(select(Vote)).all()
    assert [(v.voter_id, v.nomination_id, v.day) for v in rows] == [(voter, first, "2021-07-02"),
                                                                   (voter, first, "2021-07-03")]
    assert all(len(v.ip_hash) == 40 and "10.0.0.1" not in v.ip_hash for v in rows)


def test_window_edges_to_the_millisecond(cast: Cast, engine: Engine, campaign: Campaign, candidates: list[int],
                                         verified: Callable[[str], int], settings: Settings,
                                         clock: ManualClock) -> None:
    cid = campaign.id or 0
    voter = verified("edge@example.cn")
    clock.set(VOTING_OPENS - timedelta(milliseconds=1))
    with pytest.raises(GuardFailed, match="voting opens at 2021-07-01 00:00") as early:
        cast(cid, candidates[0], voter, "10.0.0.1", settings)
    assert not isinstance(early.value, DeadlinePassed)
    clock.set(VOTING_OPENS)
    cast(cid, candidates[0], voter, "10.0.0.1", settings)
    clock.set(VOTING_CLOSES - timedelta(milliseconds=1))  # 10 July 23:59:59.999
    cast(cid, candidates[1], voter, "10.0.0.1", settings)
    clock.set(VOTING_CLOSES)
    with pytest.raises(DeadlinePassed) as late:
        cast(cid, candidates[2], voter, "10.0.0.1", settings)
    assert late.value.message_zh == "投票已于北京时间2021年7月11日 00:00截止"
    with unit_of_work(engine, readonly=True) as session:
        assert tally.recount(session, cid) == {candidates[0]: 1, candidates[1]: 1}


def test_window_moved_by_the_committee_is_honoured_at_once(cast: Cast, engine: Engine, campaign: Campaign,
                                                           candidates: list[int], verified: Callable[[str], int],
                                                           settings: Settings) -> None:
    cid = campaign.id or 0
    voter = verified("moved@example.cn")
    cast(cid, candidates[0], voter, "10.0.0.1", settings)  # caches the window
    with unit_of_work(engine) as session:
        stages.close_stage(session, cid, StageName.VOTING, actor=OFFICE, reason="提前结束")
    with pytest.raises(DeadlinePassed):
        cast(cid, candidates[1], voter, "10.0.0.1", settings)


def test_only_shortlisted_candidates_take_votes(cast: Cast, engine: Engine, campaign: Campaign, candidates: list[int],
                                                verified: Callable[[str], int], settings: Settings) -> None:
    cid = campaign.id or 0
    voter = verified("only@example.cn")
    with pytest.raises(GuardFailed, match="not on the voting list"):
        cast(cid, candidates[3], voter, "10.0.0.1", settings)
    with pytest.raises(NotFound):
        cast(cid, 999_999, voter, "10.0.0.1", settings)


def test_candidates_per_day_cap(cast: Cast, engine: Engine, spec: CampaignSpec, clock: ManualClock, tmp_path,
                                settings: Settings) -> None:
    from nominations.states import State
    from tests.factories import create_nomination

    capped = spec.model_copy(update={"voting": spec.voting.model_copy(update={"candidates_per_voter_per_day": 2})})
    with unit_of_work(engine) as session:
        campaign = stages.load_campaign(session, capped)
        ids = [create_nomination(session, campaign, capped, State.SHORTLISTED).id for _ in range(3)]
    clock.set(beijing(2021, 7, 5, 12, 0))
    cid = campaign.id or 0
    codes.request_code(engine, cid, "email", "cap@example.cn", "10.0.0.2", settings)
    token = codes.confirm_code(engine, cid, "email", "cap@example.cn", code_from_outbox(engine, "cap@example.cn"),
                                "10.0.0.2", settings)
    voter = identities.voter_of_token(token, cid, settings)
    assert cast(cid, ids[0] or 0, voter, "10.0.0.2", settings).candidates_left_today == 1
    assert cast(cid, ids[1] or 0, voter, "10.0.0.2", settings).candidates_left_today == 0
    with pytest.raises(GuardFailed, match="at most 2 candidates") as refused:
        cast(cid, ids[2] or 0, voter, "10.0.0.2", settings)
    assert "每天最多为2名候选人投票" in (refused.value.message_zh or "")
    with unit_of_work(engine, readonly=True) as session:  # the refused vote left nothing behind
        assert tally.recount(session, cid) == {ids[0]: 1, ids[1]: 1} == tally.counters(session, cid)


def test_several_votes_per_candidate_per_day(cast: Cast, engine: Engine, spec: CampaignSpec, clock: ManualClock,
                                             tmp_path) -> None:
    """A campaign file may allow two votes a day for one candidate: the third is refused, the
    candidate takes one of the day's places, and each vote counts once against the rate limit."""
    from nominations.states import State
    from tests.factories import create_nomination

    twice = spec.model_copy(update={"voting": spec.voting.model_copy(update={"votes_per_candidate_per_day": 2})})
    settings = voting_settings(tmp_path, VOTE_RATE_PER_VOTER_MINUTE=3)
    with unit_of_work(engine) as session:
        campaign = stages.load_campaign(session, twice)
        ids = [create_nomination(session, campaign, twice, State.SHORTLISTED).id or 0 for _ in range(2)]
    clock.set(beijing(2021, 7, 5, 12, 0))
    cid = campaign.id or 0
    codes.request_code(engine, cid, "email", "twice@example.cn", "10.0.0.4", settings)
    token = codes.confirm_code(engine, cid, "email", "twice@example.cn",
                                code_from_outbox(engine, "twice@example.cn"), "10.0.0.4", settings)
    voter = identities.voter_of_token(token, cid, settings)
    assert cast(cid, ids[0], voter, "10.0.0.4", settings).candidates_left_today == 24
    assert cast(cid, ids[0], voter, "10.0.0.4", settings).candidates_left_today == 24
    with pytest.raises(Conflict) as third:
        cast(cid, ids[0], voter, "10.0.0.4", settings)
    assert "已为该候选人投过2票" in (third.value.message_zh or "")
    with pytest.raises(RateLimited):  # three votes counted, not six: the fourth is over
        cast(cid, ids[1], voter, "10.0.0.4", settings)
    with unit_of_work(engine, readonly=True) as session:
        assert tally.recount(session, cid) == {ids[0]: 2} == tally.counters(session, cid)
        assert session.exec(select(VoterDay.candidates).where(VoterDay.voter_id == voter)).one() == 1


def test_concurrent_double_vote_counts_once(cast: Cast, engine: Engine, campaign: Campaign, candidates: list[int],
                                            verified: Callable[[str], int], settings: Settings) -> None:
    cid = campaign.id or 0
    voter = verified("race@example.cn")
    results: list[str] = []
    barrier = threading.Barrier(6)

    def vote() -> None:
        barrier.wait()
        try:
            cast(cid, candidates[0], voter, "10.0.0.9", settings)
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=vote) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    with unit_of_work(engine, readonly=True) as session:
        assert tally.counters(session, cid) == {candidates[0]: 1}
        # a racing duplicate that took one of the day's places gave it back
        assert session.exec(select(VoterDay.candidates).where(VoterDay.voter_id == voter)).one() == 1


def test_verification_stores_hashes_and_locks_for_a_doubling_time(engine: Engine, campaign: Campaign,
                                                                   candidates: list[int], settings: Settings,
                                                                   clock: ManualClock) -> None:
    cid = campaign.id or 0
    sent = codes.request_code(engine, cid, "email", " Wang@Example.CN ", "10.0.0.3", settings)
    assert sent.masked == "w***@example.cn"
    good = code_from_outbox(engine, "wang@example.cn")
    bad = "000000" if good != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(ValidationFailed, match=f"wrong code \\({left} tries left\\)"):
            codes.confirm_code(engine, cid, "email", "wang@example.cn", bad, "10.0.0.3", settings)
    with pytest.raises(RateLimited) as locked:
        codes.confirm_code(engine, cid, "email", "wang@example.cn", bad, "10.0.0.3", settings)
    assert locked.value.retry_after == 60
    with pytest.raises(RateLimited):  # even the right code waits out the lock
        codes.confirm_code(engine, cid, "email", "wang@example.cn", good, "10.0.0.3", settings)
    clock.advance(timedelta(seconds=61))
    with pytest.raises(RateLimited) as doubled:
        codes.confirm_code(engine, cid, "email", "wang@example.cn", bad, "10.0.0.3", settings)
    assert doubled.value.retry_after == 120
    clock.advance(timedelta(seconds=121))
    token = codes.confirm_code(engine, cid, "email", "WANG@example.cn", good, "10.0.0.3", settings)
    assert identities.voter_of_token(token, cid, settings) > 0
    with pytest.raises(ValidationFailed, match="expired or was used"):  # a code works once
        codes.confirm_code(engine, cid, "email", "wang@example.cn", good, "10.0.0.3", settings)
    with unit_of_work(engine, readonly=True) as session:
        identity = session.exec(select(VoterIdentity)).one()
        dump = session.execute(text("SELECT * FROM voter_identity")).all()
    assert "wang" not in repr(dump) and identity.identity_hash == keyed_hash("email:wang@example.cn", settings)


def test_codes_expire_and_bad_addresses_are_refused(engine: Engine, campaign: Campaign, candidates: list[int],
                                                    settings: Settings, clock: ManualClock) -> None:
    cid = campaign.id or 0
    with pytest.raises(ValidationFailed, match="not an email address"):
        codes.request_code(engine, cid, "email", "not-an-address", "10.0.0.4", settings)
    with pytest.raises(ValidationFailed, match="mainland mobile"):
        codes.request_code(engine, cid, "phone", "12345", "10.0.0.4", settings)
    codes.request_code(engine, cid, "email", "late@example.cn", "10.0.0.4", settings)
    code = code_from_outbox(engine, "late@example.cn")
    clock.advance(timedelta(seconds=settings.vote_code_ttl_seconds + 1))
    with pytest.raises(ValidationFailed, match="expired"):
        codes.confirm_code(engine, cid, "email", "late@example.cn", code, "10.0.0.4", settings)


def test_a_second_code_within_the_interval_is_refused(engine: Engine, campaign: Campaign, candidates: list[int],
                                                      tmp_path) -> None:
    settings = voting_settings(tmp_path, VOTE_CODE_INTERVAL_SECONDS=60)
    cid = campaign.id or 0
    codes.request_code(engine, cid, "email", "again@example.cn", "10.0.0.5", settings)
    with pytest.raises(RateLimited) as wait:
        codes.request_code(engine, cid, "email", "again@example.cn", "10.0.0.5", settings)
    assert 50 < wait.value.retry_after <= 61


def test_phone_codes_go_through_the_sms_gateway(engine: Engine, campaign: Campaign, candidates: list[int],
                                                settings: Settings) -> None:
    cid = campaign.id or 0
    gateway = get_gateway(settings)
    assert isinstance(gateway, ConsoleSms)
    codes.request_code(engine, cid, "phone", "+86 139-0000-1111", "10.0.0.6", settings)
    phone, message = gateway.sent[-1]
    assert phone == "13900001111" and "投票验证码" in message
    code = message.split("投票验证码")[1][:6]
    assert (settings.data_dir / "sms.log").read_text(encoding="utf-8").count(code) == 1
    token = codes.confirm_code(engine, cid, "phone", "13900001111", code, "10.0.0.6", settings)
    voter = identities.voter_of_token(token, cid, settings)
    assert casting.cast_vote(engine, cid, candidates[0], voter, "10.0.0.6", settings).vote_id > 0


def test_tokens_are_checked(engine: Engine, campaign: Campaign, settings: Settings, tmp_path) -> None:
    cid = campaign.id or 0
    token = identities.issue_token(cid, 7, settings)
    assert identities.voter_of_token(token, cid, settings) == 7
    with pytest.raises(identities.NotVerified):
        identities.voter_of_token(token[:-2] + "xx", cid, settings)
    with pytest.raises(identities.NotVerified):
        identities.voter_of_token(None, cid, settings)
    with pytest.raises(identities.NotVerified):  # signed with another key
        identities.voter_of_token(token, cid, voting_settings(tmp_path, SECRET_KEY="another-secret-" + "z" * 40))


def test_verify_catches_a_tampered_counter_and_invalidation_keeps_the_row(
        engine: Engine, campaign: Campaign, candidates: list[int], verified: Callable[[str], int],
        settings: Settings) -> None:
    cid = campaign.id or 0
    voters = [verified(f"v{i}@example.cn") for i in range(3)]
    for voter in voters:
        casting.cast_vote(engine, cid, candidates[0], voter, "10.0.0.7", settings)
    with unit_of_work(engine) as session:
        session.execute(text("UPDATE vote_counter SET votes = votes + 100 WHERE nomination_id = :n"),
                        {"n": candidates[0]})
    with unit_of_work(engine, readonly=True) as session:
        assert tally.verify(session, cid) == [tally.Mismatch(candidates[0], 103, 3)]
    with unit_of_work(engine) as session:  # repair, then invalidate one vote
        session.execute(text("UPDATE vote_counter SET votes = 3"))
    with unit_of_work(engine, readonly=True) as session:
        vote_id = tally.list_votes(session, cid)[-1].id or 0
    with pytest.raises(ValidationFailed, match="reason is required"):
        with unit_of_work(engine) as session:
            tally.invalidate(session, vote_id, actor=OFFICE, reason="  ")
    with unit_of_work(engine) as session:
        tally.invalidate(session, vote_id, actor=OFFICE, reason="同一人多号刷票")
    with pytest.raises(Conflict, match="already invalid"):
        with unit_of_work(engine) as session:
            tally.invalidate(session, vote_id, actor=OFFICE, reason="again")
    with unit_of_work(engine, readonly=True) as session:
        assert tally.verify(session, cid) == []
        assert tally.tally(session, cid) == {candidates[0]: 2}
        vote = session.get(Vote, vote_id)
        assert vote is not None and not vote.valid and vote.invalid_reason == "同一人多号刷票"
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "vote_invalidated")).one()
    assert audit.reason == "同一人多号刷票" and audit.subject == f"vote:{vote_id}"
    with pytest.raises(DBAPIError, match="append-only"):  # the database keeps every vote
        with unit_of_work(engine) as session:
            session.execute(text("DELETE FROM vote WHERE id = :id"), {"id": vote_id})


def test_bursts_are_flagged_not_dropped(engine: Engine, campaign: Campaign, candidates: list[int],
                                        verified: Callable[[str], int], settings: Settings,
                                        clock: ManualClock) -> None:
    cid = campaign.id or 0
    threshold = 60  # flag_votes_per_address_minute of the 2021 campaign
    clock.set(beijing(2021, 7, 3, 8, 0, 5))
    with unit_of_work(engine) as session:  # many voters behind one address in one minute
        for i in range(threshold + 1):
            session.add(VoterIdentity(campaign_id=cid, kind="email", identity_hash=f"h{i}", created_at=clock.now(),
                                      created_minute=0))
    with unit_of_work(engine, readonly=True) as session:
        voter_ids = [v.id for v in session.exec(select(VoterIdentity)) if v.identity_hash.startswith("h")]
    for voter in voter_ids:
        casting.cast_vote(engine, cid, candidates[1], voter or 0, "203.0.113.7", settings)
    with unit_of_work(engine) as session:
        assert monitor.scan_flags(session, cid) == 2  # the address, and 61 new voters in one minute
        assert monitor.scan_flags(session, cid) == 0  # idempotent
        flags = monitor.list_flags(session, cid)
        assert tally.recount(session, cid) == {candidates[1]: threshold + 1}  # nothing dropped
    kinds = {f.kind: f for f in flags}
    assert set(kinds) == {FlagKind.IP_BURST, FlagKind.FRESH_IDENTITIES}  # 61 < 200 for the network
    assert kinds[FlagKind.IP_BURST].count == threshold + 1
    assert monitor.minute_local(kinds[FlagKind.IP_BURST].minute, "Asia/Shanghai").strftime("%H:%M") == "08:00"


def test_the_voting_close_freezes_the_tally_once(engine: Engine, campaign: Campaign, candidates: list[int],
                                                 verified: Callable[[str], int], settings: Settings,
                                                 clock: ManualClock) -> None:
    from wiring.bootstrap import bootstrap

    bootstrap()
    assert tally.freeze in jobs._close_listeners[StageName.VOTING.value]
    cid = campaign.id or 0
    voter = verified("freeze@example.cn")
    casting.cast_vote(engine, cid, candidates[2], voter, "10.0.0.8", settings)
    clock.set(VOTING_CLOSES)
    with unit_of_work(engine) as session:
        stage = campaigns.get_stage(session, cid, StageName.VOTING)
        tally.freeze(session, campaigns.get_campaign_by_id(session, cid), stage)
        tally.freeze(session, campaigns.get_campaign_by_id(session, cid), stage)  # a second close: nothing new
    with unit_of_work(engine, readonly=True) as session:
        assert tally.frozen(session, cid) == {candidates[0]: 0, candidates[1]: 0, candidates[2]: 1}
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "votes_frozen")).all()
        vote_id = tally.list_votes(session, cid)[0].id or 0
    assert len(events) == 1 and events[0].data["total"] == 1
    with pytest.raises(GuardFailed, match="frozen"):
        with unit_of_work(engine) as session:
            tally.invalidate(session, vote_id, actor=OFFICE, reason="too late")
