"""The app's own OpenAPI schema, fuzzed by schemathesis: no input makes it answer 5xx, whoever asks.

Every API operation gets a bounded number of generated requests (``MAX_EXAMPLES``), run against the
app in-process with the 2021 campaign loaded, on both databases, as each caller: anonymous (at both
moments: nomination open; voting open with real candidates), an applicant (nomination open; the
``{token}`` paths get a fresh draft's token), each committee role (a logged-in session and its CSRF
token) and a verified voter (its bearer token), both while voting is open. Anonymous on SQLite is
the quick run; the rest is marked slow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from accounts import service as accounts
from accounts.models import Role
from campaigns.models import Campaign
from config.campaign import CampaignSpec
from config.settings import Settings
from core.clock import ManualClock
from nominations.models import NominationKind
from nominations.states import State
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_draft, create_nomination
from tests.web.conftest import PASSWORD
from web.app import create_app
from web.security import CSRF_HEADER

MAX_EXAMPLES = 20  # anonymous on SQLite, the quick run
ROLE_EXAMPLES = 8  # each further caller and database (slow): 24 operations × 8 × 13 runs
MOMENTS = ["nomination open", "voting open"]
COMMITTEE = [Role.OFFICE_ADMIN, Role.REVIEWER, Role.VETTING_OFFICER]
CALLERS = ["anonymous", "applicant", *(r.value for r in COMMITTEE), "voter"]
#: each caller at the moment its operations do the most: an applicant's draft is editable while the
#: nomination stage is open; the committee's lists, tallies and flags and a voter's ballot have
#: candidates while voting is open (anonymous callers get both)
CASES = [("nomination open", "anonymous"), ("voting open", "anonymous"), ("nomination open", "applicant"),
         *(("voting open", caller) for caller in CALLERS[2:])]
#: the session's own operations run on a throwaway login, so that logging out (or a failed
#: log-in) does not end the session the caller's other operations use
SESSION_PATH = "/api/session"


@dataclass
class Caller:
    """What a caller sends with every request: cookies and headers, and a fresh draft's token for
    the applicant's paths (so one operation's submit or withdraw does not shape the next one's)."""

    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    session_op: Callable[[], tuple[dict[str, str], dict[str, str]]] | None = None
    draft_token: Callable[[], str] | None = None


def _log_in(app: FastAPI, username: str) -> tuple[dict[str, str], dict[str, str]]:
    client = TestClient(app)
    response = client.post(SESSION_PATH, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(client.cookies.items()), {CSRF_HEADER: str(response.json()["csrf_token"])}


def _caller(name: str, app: FastAPI, engine: Engine, campaign: Campaign, spec: CampaignSpec, moment: str) -> Caller:
    if name == "anonymous":
        return Caller()
    if name == "applicant":
        def fresh_draft() -> str:
            with unit_of_work(engine) as session:
                return create_draft(session, campaign, spec, kind=NominationKind.UNIT).token

        return Caller(draft_token=fresh_draft)
    if name == "voter":
        from tests.voting.conftest import code_from_outbox
        from voting import codes

        settings: Settings = app.state.settings
        if moment != "voting open":
            return Caller()  # no code is sent outside the voting window: a voter cannot exist yet
        codes.request_code(engine, campaign.id or 0, "email", "fuzz@example.cn", "10.9.9.9", settings)
        token = codes.confirm_code(engine, campaign.id or 0, "email", "fuzz@example.cn",
                                   code_from_outbox(engine, "fuzz@example.cn"), "10.9.9.9", settings)
        return Caller(headers={"Authorization": f"Bearer {token}"}, cookies={"jingong_voter": token})
    with unit_of_work(engine) as session:
        accounts.create_user(session, f"fuzz-{name}", PASSWORD, Role(name))
    cookies, headers = _log_in(app, f"fuzz-{name}")
    return Caller(cookies=cookies, headers=headers, session_op=lambda: _log_in(app, f"fuzz-{name}"))


def _at_moment(moment: str, engine: Engine, campaign: Campaign, spec: CampaignSpec, clock: ManualClock) -> None:
    if moment == "voting open":  # the vote routes past the window check, with real candidates
        with unit_of_work(engine) as session:
            for _ in range(3):
                create_nomination(session, campaign, spec, State.SHORTLISTED)
        clock.set(beijing(2021, 7, 2, 9, 0))


def _fuzz_one(strategy: Any, max_examples: int, cookies: dict[str, str], headers: dict[str, str],
              failures: list[str], seen: set[int]) -> None:
    """One operation's generated cases, sent with the caller's cookies and headers; server errors
    are added to ``failures``, every status answered to ``seen``."""

    @given(case=strategy)
    @settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call(headers=headers, cookies=cookies)
        seen.add(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")
        assert response.status_code < 500

    with contextlib.suppress(AssertionError):  # recorded; go on with the other operations
        run()


def _fuzz(app: FastAPI, caller: Caller, max_examples: int) -> tuple[list[str], dict[str, set[int]]]:
    """Every operation with ``max_examples`` generated cases: (server errors, the statuses answered
    per operation, as "METHOD /path")."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    for operation in operations:
        cookies, headers = caller.cookies, caller.headers
        if operation.path == SESSION_PATH and caller.session_op is not None:
            cookies, headers = caller.session_op()
        fixed_path = {}
        if caller.draft_token is not None and "{token}" in operation.path:
            fixed_path["token"] = caller.draft_token()
        # the bearer token is a declared header of POST /api/votes: fixed, not generated
        declared = {"Authorization": headers["Authorization"]} if "Authorization" in headers else None
        strategy = operation.as_strategy(path_parameters=fixed_path or None, headers=declared)
        _fuzz_one(strategy, max_examples, cookies, headers, failures,
                  seen.setdefault(f"{operation.method.upper()} {operation.path}", set()))
    return failures, seen


def _check(engine: Engine, campaign: Campaign, web_settings: Settings, clock: ManualClock, spec: CampaignSpec,
           moment: str, caller_name: str, max_examples: int) -> None:
    _at_moment(moment, engine, campaign, spec, clock)
    app = create_app(engine, web_settings, background=False, create_admin=False)
    caller = _caller(caller_name, app, engine, campaign, spec, moment)
    failures, seen = _fuzz(app, caller, max_examples)
    assert failures == []
    assert len(seen) >= 20 and all(seen.values())
    # the caller's credentials reached the routes (else this would be the anonymous run again)
    if caller_name in {r.value for r in COMMITTEE}:
        assert 200 in seen["GET /api/committee/nominations"], seen
    else:
        assert seen["GET /api/committee/nominations"] == {401}, seen
    if caller_name == "applicant":
        assert 200 in seen["GET /api/nominations/{token}"], seen
    if caller_name == "voter" and moment == "voting open":
        assert seen["POST /api/votes"] - {401, 422}, seen


@pytest.mark.parametrize("moment", MOMENTS)
def test_no_server_errors(engine: Engine, campaign: Campaign, web_settings: Settings, clock: ManualClock,
                          spec: CampaignSpec, moment: str) -> None:
    """Anonymous, on SQLite: the quick run."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL runs with every caller below")
    _check(engine, campaign, web_settings, clock, spec, moment, "anonymous", MAX_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "caller"), CASES)
def test_no_server_errors_for_any_caller(engine: Engine, campaign: Campaign, web_settings: Settings,
                                         clock: ManualClock, spec: CampaignSpec, moment: str, caller: str) -> None:
    if caller == "anonymous" and engine.dialect.name == "sqlite":
        pytest.skip("the quick run above")
    _check(engine, campaign, web_settings, clock, spec, moment, caller, ROLE_EXAMPLES)
