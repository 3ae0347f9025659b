"""Request dependencies: the unit of work, the campaign, the logged-in committee member."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from accounts import service as accounts
from accounts import sessions as login_sessions
from accounts.models import Role, User
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec
from config.settings import Settings
from core.errors import Forbidden
from storage.db import UnitOfWork, unit_of_work
from web import security


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    display_name: str
    role: str


class LoginRequired(Exception):
    """Nobody is logged in (or the session expired): 401 for the API, the login page for HTML."""


class CsrfFailed(Exception):
    pass


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


#: requests that only read: their transaction takes no write lock and cannot write
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[UnitOfWork]:
    """One transaction per request, committed when the handler returns without error and
    before the response is sent (scope="function"), so a failed commit is never reported as done.
    A GET reads only: on SQLite it never waits for the writers of a rush."""
    with unit_of_work(get_engine(request), readonly=request.method in READ_METHODS) as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[UnitOfWork, Depends(get_session, scope="function")]


def get_campaign(session: SessionDep) -> Campaign:
    return campaigns.get_campaign(session)


CampaignDep = Annotated[Campaign, Depends(get_campaign)]


def get_spec(request: Request, campaign: CampaignDep) -> CampaignSpec:
    spec = request.state.spec = campaigns.spec_of(campaign)
    return spec


SpecDep = Annotated[CampaignSpec, Depends(get_spec)]


def get_optional_user(request: Request, session: SessionDep, settings: SettingsDep) -> User | None:
    token = security.session_token(request)
    if token is None:
        return None
    user = login_sessions.resolve(session, token, settings)
    if user is None:  # ended, timed out, or the account deactivated
        security.log_out(request)
        return None
    # a detached copy for templates: error pages render after the transaction is gone
    request.state.user = UserView(user.id or 0, user.username, user.display_name, str(user.role))
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise LoginRequired()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def check_csrf(request: Request) -> None:
    """Every state-changing request of a logged-in member carries the session's CSRF token,
    as a form field or a header."""
    supplied = request.headers.get(security.CSRF_HEADER)
    if supplied is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(security.CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    if not security.csrf_ok(request, supplied):
        raise CsrfFailed()


CsrfChecked = Depends(check_csrf)


def require(act: str) -> Callable[[User], User]:
    """A dependency: the current user, if their role may do ``act`` (see accounts.service.ACTS)."""

    def dependency(user: CurrentUser) -> User:
        if not accounts.may(Role(user.role), act):
            raise Forbidden(
                f"role {user.role} may not {act}",
                f"您的角色（{accounts.ROLE_LABELS_ZH[Role(user.role)]}）无权进行此操作",
            )
        return user

    return dependency


AdminUser = Annotated[User, Depends(require("users"))]
