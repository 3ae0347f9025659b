"""Verification codes under concurrency, on both databases: the failure count and the lock of an
identity are counted by the database, so a crowd of wrong codes at once checks no more guesses
than the lock allows, and two first requests for one address create its identity once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from campaigns.models import Campaign
from config.settings import Settings
from core.clock import ManualClock
from core.errors import RateLimited, ValidationFailed
from storage.db import unit_of_work
from tests.voting.conftest import code_from_outbox, voting_settings
from voting import codes
from voting.models import VoteCode, VoterIdentity
from voting.sms import get_gateway

THREADS = 30


def _at_once(n: int, act: Callable[[int], Any]) -> list[Any]:
    """Run ``act(i)`` in ``n`` real threads released together; each call opens its own unit of
    work. Returns what each returned or raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = act(i)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@pytest.fixture
def open_settings(tmp_path: Path) -> Settings:
    """No per-address rate limit: only the identity's lock stands between the crowd and the code."""
    return voting_settings(tmp_path, VOTE_RATE_PER_ADDRESS_MINUTE=0)


def _identity(engine: Engine) -> VoterIdentity:
    with unit_of_work(engine, readonly=True) as session:
        return session.exec(select(VoterIdentity)).one()


def test_thirty_wrong_codes_at_once_check_at_most_five(engine: Engine, campaign: Campaign, candidates: list[int],
                                                      open_settings: Settings, clock: ManualClock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cid, phone = campaign.id or 0, "13900002222"
    codes.request_code(engine, cid, "phone", phone, "10.0.1.1", open_settings)
    good = get_gateway(open_settings).sent[-1][1].split("投票验证码")[1][:6]  # type: ignore[attr-defined]
    checked: list[str] = []
    real_hash = codes._code_hash

    def counting_hash(identity_id: int | None, code: str, settings: Settings) -> str:
        checked.append(code)  # list.append is atomic: a count of the guesses compared with the code
        return real_hash(identity_id, code, settings)

    monkeypatch.setattr(codes, "_code_hash", counting_hash)
    guesses = [f"{i:06d}" for i in range(THREADS)]
    guesses = [g if g != good else "999999" for g in guesses]

    outcomes = _at_once(THREADS, lambda i: codes.confirm_code(engine, cid, "phone", phone, guesses[i],
                                                              f"10.0.2.{i}", open_settings))

    assert all(isinstance(o, ValidationFailed | RateLimited) for o in outcomes), outcomes
    wrong = [o for o in outcomes if isinstance(o, ValidationFailed)]
    locking = [o for o in outcomes if isinstance(o, RateLimited) and "times: locked" in str(o)]
    refused = [o for o in outcomes if isinstance(o, RateLimited) and "is locked" in str(o)]
    assert len(checked) == codes.LOCK_AFTER
    assert (len(wrong), len(locking), len(refused)) == (codes.LOCK_AFTER - 1, 1, THREADS - codes.LOCK_AFTER)
    identity = _identity(engine)
    assert identity.failures == codes.LOCK_AFTER and identity.locked_until is not None
    with pytest.raises(RateLimited):  # the right code afterwards waits out the lock
        codes.confirm_code(engine, cid, "phone", phone, good, "10.0.1.1", open_settings)
    assert len(checked) == codes.LOCK_AFTER


def test_the_right_code_among_a_crowd_of_wrong_ones_is_used_once(engine: Engine, campaign: Campaign,
                                                                 candidates: list[int],
                                                                 open_settings: Settings) -> None:
    """Ten tries with the right code at once: one token, the code is then used up for the rest."""
    cid, address = campaign.id or 0, "crowd@example.cn"
    codes.request_code(engine, cid, "email", address, "10.0.1.2", open_settings)
    good = code_from_outbox(engine, address)
    outcomes = _at_once(10, lambda i: codes.confirm_code(engine, cid, "email", address, good, f"10.0.3.{i}",
                                                         open_settings))
    tokens = [o for o in outcomes if isinstance(o, str)]
    assert len(tokens) == 1, outcomes
    assert all(isinstance(o, ValidationFailed | RateLimited) for o in outcomes if not isinstance(o, str))
    assert _identity(engine).verified_at is not None


def test_first_requests_for_one_address_at_once_create_one_identity(engine: Engine, campaign: Campaign,
                                                                    candidates: list[int], tmp_path: Path) -> None:
    settings = voting_settings(tmp_path, VOTE_RATE_PER_ADDRESS_MINUTE=0, VOTE_CODE_INTERVAL_SECONDS=60)
    cid = campaign.id or 0
    outcomes = _at_once(8, lambda i: codes.request_code(engine, cid, "email", "first@example.cn",
                                                        f"10.0.4.{i}", settings))
    sent = [o for o in outcomes if isinstance(o, codes.CodeSent)]
    waits = [o for o in outcomes if isinstance(o, RateLimited)]
    assert (len(sent), len(waits)) == (1, 7), outcomes  # the interval between codes holds under the race
    with unit_of_work(engine, readonly=True) as session:
        assert len(session.exec(select(VoterIdentity)).all()) == 1
        assert len(session.exec(select(VoteCode)).all()) == 1

