"""Login failures, locks and sessions through the accounts services, on both databases."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from accounts import login, sessions
from accounts import service as accounts
from accounts.models import LoginSession, Role, SessionEnd, User
from audit import service as audit
from config.settings import Settings
from core.actor import Actor
from core.clock import ManualClock
from core.errors import RateLimited, ValidationFailed
from storage.db import unit_of_work

PASSWORD = "correct-horse-42"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"JINGONG_DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "k" * 48,
                                    "LOGIN_RATE_PER_ADDRESS_MINUTE": 0})


@pytest.fixture
def member(engine: Engine, clock: ManualClock) -> User:
    with unit_of_work(engine) as session:
        return accounts.create_user(session, "office", PASSWORD, Role.OFFICE_ADMIN)


def attempt(engine: Engine, settings: Settings, password: str, name: str = "office") -> str:
    """'ok', 'wrong' or 'locked:<retry-after>'."""
    try:
        login.attempt(engine, settings, name, password, address="10.0.0.1")
    except RateLimited as exc:
        return f"locked:{exc.retry_after}"
    except ValidationFailed:
        return "wrong"
    return "ok"


def row(engine: Engine, username: str = "office") -> User:
    with unit_of_work(engine, readonly=True) as session:
        return accounts.get_by_username(session, username)


def actions(engine: Engine, action: str) -> int:
    with unit_of_work(engine, readonly=True) as session:
        return len(audit.list_events(session, action=action))


def test_five_failures_lock_for_fifteen_minutes_then_the_lock_doubles(
        engine: Engine, settings: Settings, member: User, clock: ManualClock) -> None:
    answers = [attempt(engine, settings, "wrong-password") for _ in range(5)]
    assert answers == ["wrong"] * 4 + ["locked:901"]
    assert attempt(engine, settings, PASSWORD) == "locked:901"  # the right password is refused too
    locked = row(engine)
    assert locked.failed_logins == 5 and locked.lockouts == 1 and locked.locked_until is not None
    clock.advance(timedelta(minutes=15))
    assert [attempt(engine, settings, "wrong-password") for _ in range(5)][-1] == "locked:1801"  # doubled
    clock.advance(timedelta(minutes=29))
    assert attempt(engine, settings, PASSWORD).startswith("locked:")
    clock.advance(timedelta(minutes=1))
    assert attempt(engine, settings, PASSWORD) == "ok"
    reset = row(engine)
    assert (reset.failed_logins, reset.lockouts, reset.locked_until) == (0, 0, None)
    assert actions(engine, "login_failed") == 10 and actions(engine, "login_locked") == 2
    assert actions(engine, "login") == 1


def test_a_success_resets_the_count(engine: Engine, settings: Settings, member: User) -> None:
    for _ in range(4):
        assert attempt(engine, settings, "wrong-password") == "wrong"
    assert attempt(engine, settings, PASSWORD) == "ok"
    assert [attempt(engine, settings, "wrong-password") for _ in range(4)] == ["wrong"] * 4


def test_an_unknown_name_answers_as_an_account_does(engine: Engine, settings: Settings, member: User) -> None:
    known = [attempt(engine, settings, "wrong-password") for _ in range(7)]
    unknown = [attempt(engine, settings, "wrong-password", name="nobody") for _ in range(7)]
    assert known == unknown


def test_a_deactivated_member_cannot_log_in(engine: Engine, settings: Settings, member: User) -> None:
    with unit_of_work(engine) as session:
        accounts.set_active(session, accounts.get_by_username(session, "office"), False, actor=Actor.system("test"))
    assert attempt(engine, settings, PASSWORD) == "wrong"


def test_thirty_concurrent_wrong_passwords_get_at_most_five_checks(
        engine: Engine, settings: Settings, member: User, monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str | None] = []
    real_verify = login.verify
    guard = threading.Lock()

    def counting_verify(password_hash: str | None, password: str, s: Settings) -> bool:
        with guard:
            checks.append(password_hash)
        return real_verify(password_hash, password, s)

    monkeypatch.setattr(login, "verify", counting_verify)
    start = threading.Barrier(30)

    def one(i: int) -> str:
        start.wait()
        try:
            login.attempt(engine, settings, "office", f"wrong-{i}", address=f"10.0.0.{i}")
        except RateLimited:
            return "locked"
        except ValidationFailed:
            return "wrong"
        return "ok"

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(one, range(30)))
    assert len(checks) <= 5
    assert answers.count("ok") == 0 and answers.count("wrong") <= 4
    locked = row(engine)
    assert locked.failed_logins == 5 and locked.locked_until is not None
    assert actions(engine, "login_failed") == len(checks) == 5
    assert actions(engine, "login_locked") == 1


def test_password_checks_run_at_most_two_at_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    running, peak = 0, 0
    guard = threading.Lock()

    class SlowHasher:
        def verify(self, password_hash: str, password: str) -> bool:
            nonlocal running, peak
            with guard:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)
            with guard:
                running -= 1
            return False

    monkeypatch.setattr(login, "hasher", SlowHasher())
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: login.verify("$argon2id$x", "x", settings), range(8)))
    assert results == [False] * 8 and peak == settings.login_verify_concurrency == 2


def test_sessions_end_by_logout_password_deactivation_and_admin(
        engine: Engine, settings: Settings, member: User) -> None:
    tokens = [login.attempt(engine, settings, "office", PASSWORD, address="a").token for _ in range(4)]
    admin = Actor.system("test")
    with unit_of_work(engine) as session:
        accounts.log_out(session, tokens[0])
        assert sessions.resolve(session, tokens[0], settings) is None
        assert sessions.resolve(session, tokens[1], settings) is not None
        user = accounts.get_by_username(session, "office")
        assert accounts.set_password(session, user, "another-password-1", actor=admin) == 3
    with unit_of_work(engine, readonly=True) as session:
        assert all(sessions.resolve(session, t, settings) is None for t in tokens)
        reasons = {r.ended_reason for r in session.exec(select(LoginSession))}
    assert reasons == {SessionEnd.LOGOUT, SessionEnd.PASSWORD_CHANGED}
    assert actions(engine, "logout") == 1 and actions(engine, "password_set") == 1


def test_idle_and_absolute_timeouts(engine: Engine, settings: Settings, member: User, clock: ManualClock) -> None:
    token = login.attempt(engine, settings, "office", PASSWORD, address="a").token
    for _ in range(16):  # busy: a request every 29 minutes keeps it alive ...
        clock.advance(timedelta(minutes=29))
        with unit_of_work(engine) as session:
            assert sessions.resolve(session, token, settings) is not None
    clock.advance(timedelta(minutes=29))  # ... until 8 hours after the login
    with unit_of_work(engine) as session:
        assert sessions.resolve(session, token, settings) is None
    idle = login.attempt(engine, settings, "office", PASSWORD, address="a").token
    clock.advance(timedelta(minutes=30))
    with unit_of_work(engine) as session:
        assert sessions.resolve(session, idle, settings) is None
    with unit_of_work(engine, readonly=True) as session:
        ended = {r.ended_reason for r in session.exec(select(LoginSession))}
    assert ended == {SessionEnd.EXPIRED, SessionEnd.IDLE}


def test_last_seen_is_written_at_most_once_a_minute(
        engine: Engine, settings: Settings, member: User, clock: ManualClock) -> None:
    token = login.attempt(engine, settings, "office", PASSWORD, address="a").token
    with unit_of_work(engine, readonly=True) as session:
        began = session.exec(select(LoginSession)).one().last_seen_at
    clock.advance(timedelta(seconds=59))
    with unit_of_work(engine) as session:
        sessions.resolve(session, token, settings)
        assert not session.dirty
    clock.advance(timedelta(seconds=2))
    with unit_of_work(engine) as session:
        sessions.resolve(session, token, settings)
    with unit_of_work(engine, readonly=True) as session:
        assert session.exec(select(LoginSession)).one().last_seen_at == began + timedelta(seconds=61)


def test_a_new_login_replaces_the_browsers_old_session(engine: Engine, settings: Settings, member: User) -> None:
    first = login.attempt(engine, settings, "office", PASSWORD, address="a").token
    second = login.attempt(engine, settings, "office", PASSWORD, address="a", previous_token=first).token
    assert first != second
    with unit_of_work(engine) as session:
        assert sessions.resolve(session, first, settings) is None
        assert sessions.resolve(session, second, settings) is not None
