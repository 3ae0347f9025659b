"""Committee login over HTTP: locks (429 + Retry-After), revocable sessions, the admin's hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from accounts import service as accounts
from accounts.models import Role, User
from audit import service as audit
from cli import users as users_cli
from cli.main import app as cli_app
from config.settings import Settings
from core.actor import Actor
from core.clock import ManualClock
from storage.db import unit_of_work
from tests.web.conftest import PASSWORD, login
from web.app import create_app

NOMINATIONS = "/api/committee/nominations"


def post_login(client: TestClient, password: str, username: str = "office") -> Any:
    return client.post("/api/session", json={"username": username, "password": password})


def actions(engine: Engine, action: str) -> int:
    with unit_of_work(engine, readonly=True) as session:
        return len(audit.list_events(session, action=action))


def test_forty_wrong_passwords_then_the_right_one(
        client: TestClient, make_user: Callable[..., User], clock: ManualClock, engine: Engine) -> None:
    make_user("office")
    answers = [post_login(client, f"wrong-{i}") for i in range(40)]
    assert [a.status_code for a in answers[:4]] == [422] * 4
    assert all(a.status_code == 429 for a in answers[4:])
    assert all(0 < int(a.headers["Retry-After"]) <= 901 for a in answers[4:])
    assert "锁定" in answers[4].json()["detail_zh"]
    right = post_login(client, PASSWORD)
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    clock.advance(timedelta(minutes=15, seconds=1))
    assert post_login(client, PASSWORD).status_code == 200
    assert actions(engine, "login_failed") == 5 and actions(engine, "login_locked") == 1
    assert actions(engine, "login") == 1


def test_a_repeat_lock_doubles(client: TestClient, make_user: Callable[..., User], clock: ManualClock) -> None:
    make_user("office")
    for _ in range(5):
        post_login(client, "wrong-password")
    clock.advance(timedelta(minutes=15, seconds=1))
    answers = [post_login(client, "wrong-password") for _ in range(5)]
    assert answers[-1].status_code == 429 and int(answers[-1].headers["Retry-After"]) == 1801
    clock.advance(timedelta(minutes=20))
    assert post_login(client, PASSWORD).status_code == 429
    clock.advance(timedelta(minutes=10, seconds=1))
    assert post_login(client, PASSWORD).status_code == 200


def test_an_unknown_name_is_not_told_apart(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("office")
    known = [post_login(client, "wrong-password") for _ in range(6)]
    unknown = [post_login(client, "wrong-password", username="nobody") for _ in range(6)]
    assert [(a.status_code, a.json()["detail_zh"]) for a in known] == \
        [(a.status_code, a.json()["detail_zh"]) for a in unknown]


def test_the_address_throttle(engine: Engine, campaign: Any, web_settings: Settings) -> None:
    settings = web_settings.model_copy(update={"login_rate_per_address_minute": 3})
    client = TestClient(create_app(engine, settings, background=False, create_admin=False))
    answers = [post_login(client, "wrong-password", username=f"name{i}") for i in range(4)]
    assert [a.status_code for a in answers] == [422, 422, 422, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0 and "网络地址" in answers[-1].json()["detail_zh"]


def test_the_login_page_when_locked(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("office")
    token = client.get("/committee/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"username": "office", "password": "wrong-password", "csrf_token": token}
    answers = [client.post("/committee/login", data=form) for _ in range(6)]
    assert [a.status_code for a in answers] == [401] * 4 + [429] * 2
    assert "锁定" in answers[-1].text and int(answers[-1].headers["Retry-After"]) > 0


def test_a_copied_cookie_is_worthless_after_logout(
        as_member: Any, make_client: Callable[[], TestClient], engine: Engine) -> None:
    member, token = as_member("office")
    copy = make_client()
    copy.cookies.update(member.cookies)
    assert copy.get(NOMINATIONS).status_code == 200
    assert member.delete("/api/session").status_code == 204
    assert copy.get(NOMINATIONS).status_code == 401
    assert member.get(NOMINATIONS).status_code == 401
    assert actions(engine, "logout") == 1


def test_the_logout_page_ends_the_session(as_member: Any, make_client: Callable[[], TestClient]) -> None:
    member, token = as_member("office")
    copy = make_client()
    copy.cookies.update(member.cookies)
    assert member.post("/committee/logout", data={"csrf_token": token}).status_code == 303
    assert copy.get(NOMINATIONS).status_code == 401


def test_the_old_session_ends_with_users_passwd(
        as_member: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    member, _ = as_member("office")
    monkeypatch.setattr(users_cli, "engine", lambda: engine)
    result = CliRunner().invoke(cli_app, ["users", "passwd", "office", "--password", "a-new-password-9"])
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.output
    assert member.get(NOMINATIONS).status_code == 401
    assert post_login(member, "a-new-password-9").status_code == 200
    assert actions(engine, "password_set") == 1


def test_deactivation_ends_every_session(as_member: Any, engine: Engine) -> None:
    member, _ = as_member("office")
    with unit_of_work(engine) as session:
        accounts.set_active(session, accounts.get_by_username(session, "office"), False, actor=Actor.system("test"))
    assert member.get(NOMINATIONS).status_code == 401
    assert actions(engine, "user_deactivated") == 1


def test_idle_and_absolute_timeouts(as_member: Any, clock: ManualClock, web_settings: Any) -> None:
    member, _ = as_member("office")
    clock.advance(timedelta(seconds=web_settings.session_idle_seconds - 60))
    assert member.get(NOMINATIONS).status_code == 200
    clock.advance(timedelta(seconds=web_settings.session_idle_seconds))
    assert member.get(NOMINATIONS).status_code == 401
    busy, _ = as_member("reviewer", Role.REVIEWER)
    steps = web_settings.session_max_age_seconds // (web_settings.session_idle_seconds - 60)
    for _ in range(steps):
        clock.advance(timedelta(seconds=web_settings.session_idle_seconds - 60))
        assert busy.get(NOMINATIONS).status_code == 200
    clock.advance(timedelta(seconds=web_settings.session_idle_seconds - 60))
    assert busy.get(NOMINATIONS).status_code == 401


def test_the_admin_ends_a_members_sessions(as_member: Any, engine: Engine) -> None:
    admin, token = as_member("office")
    member, _ = as_member("reviewer", Role.REVIEWER)
    with unit_of_work(engine, readonly=True) as session:
        member_id = accounts.get_by_username(session, "reviewer").id
    refused = member.delete(f"/api/committee/users/{member_id}/sessions", headers={"X-CSRF-Token": _})
    assert refused.status_code == 403
    ended = admin.delete(f"/api/committee/users/{member_id}/sessions", headers={"X-CSRF-Token": token})
    assert ended.status_code == 200 and ended.json() == {"username": "reviewer", "ended": 1}
    assert member.get(NOMINATIONS).status_code == 401
    assert admin.get(NOMINATIONS).status_code == 200
    assert admin.delete("/api/committee/users/999/sessions", headers={"X-CSRF-Token": token}).status_code == 404
    assert actions(engine, "sessions_ended") == 1


def test_the_users_page_button_ends_a_members_sessions(as_member: Any, engine: Engine) -> None:
    admin, token = as_member("office")
    member, _ = as_member("reviewer", Role.REVIEWER)
    with unit_of_work(engine, readonly=True) as session:
        member_id = accounts.get_by_username(session, "reviewer").id
    page = admin.get("/committee/users")
    assert f'action="/committee/users/{member_id}/logout"' in page.text
    done = admin.post(f"/committee/users/{member_id}/logout", data={"csrf_token": token})
    assert done.status_code == 303
    assert member.get(NOMINATIONS).status_code == 401


def test_users_logout_command(as_member: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    member, _ = as_member("office")
    monkeypatch.setattr(users_cli, "engine", lambda: engine)
    result = CliRunner().invoke(cli_app, ["users", "logout", "office"])
    assert result.exit_code == 0 and "1 session(s) of office ended" in result.output
    assert member.get(NOMINATIONS).status_code == 401
    assert CliRunner().invoke(cli_app, ["users", "logout", "nobody"]).exit_code != 0


def test_every_login_gets_a_new_session_id(
        make_user: Callable[..., User], client: TestClient, make_client: Callable[[], TestClient]) -> None:
    make_user("office")
    login(client, "office")
    before = make_client()
    before.cookies.update(client.cookies)
    login(client, "office")  # the same browser again: the old id ends (session fixation)
    assert before.get(NOMINATIONS).status_code == 401
    assert client.get(NOMINATIONS).status_code == 200
