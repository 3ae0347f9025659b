"""Public voting over HTTP: the voting page (verify, then vote), the JSON API, and the committee's
tally, flags and invalidation. Every rule lives in the ``voting`` package."""

from __future__ import annotations

import asyncio
import weakref
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Cookie, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from accounts import service as accounts
from accounts.models import Role, User
from campaigns import service as campaigns
from config.campaign import StageName
from config.settings import Settings
from core import clock
from core.errors import JingongError, RateLimited
from nominations import public as public_lists
from storage.db import unit_of_work
from voting import casting, codes, identities, monitor, tally, windows
from voting.batch import BatchingLane
from voting.models import FlagKind
from web import flash
from web.deps import CampaignDep, CsrfChecked, CurrentUser, EngineDep, SessionDep, SettingsDep, require
from web.errors import message_zh, status_of
from web.schemas import Id, Str32, Str254, Str2000
from web.templating import render
from workflow import bulk

router = APIRouter()
COOKIE = "jingong_voter"
FLAG_LABELS_ZH = {FlagKind.IP_BURST: "同一网络地址短时集中投票", FlagKind.NETWORK_BURST: "同一网段短时集中投票",
                  FlagKind.FRESH_IDENTITIES: "短时间内大量新投票人"}


class CodeRequest(BaseModel):
    kind: Literal["email", "phone"]
    address: Str254


class CodeConfirm(CodeRequest):
    code: Str32


class VoteRequest(BaseModel):
    nomination_id: Id


class InvalidateRequest(BaseModel):
    reason: Str2000 = Field(min_length=1)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def campaign_id_of(request: Request, engine: Engine) -> int:
    """The campaign's id, looked up once per app (the hot vote path opens no extra transaction)."""
    cached = getattr(request.app.state, "campaign_id", None)
    if cached is None:
        with unit_of_work(engine, readonly=True) as session:
            cached = request.app.state.campaign_id = campaigns.get_campaign(session).id or 0
    return int(cached)


async def campaign_id_async(request: Request, engine: Engine) -> int:
    """``campaign_id_of`` from the event loop: the one lookup per app goes to a thread."""
    cached = getattr(request.app.state, "campaign_id", None)
    return int(cached) if cached is not None else await anyio.to_thread.run_sync(campaign_id_of, request, engine)


def _token(authorization: str | None, cookie: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return cookie


def _set_cookie(response: Response, token: str, max_age: int, secure: bool) -> None:
    # SameSite=Lax: another site cannot make a visitor's browser vote
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure)


# --- JSON API ----------------------------------------------------------------------------------


@router.post("/api/votes/code", status_code=202, tags=["voting"])
def api_request_code(body: CodeRequest, request: Request, engine: EngineDep) -> dict[str, Any]:
    """Send a one-time code to an email address or a mainland mobile number."""
    sent = codes.request_code(engine, campaign_id_of(request, engine), body.kind, body.address, client_ip(request),
                               request.app.state.settings)
    return {"sent_to": sent.masked, "expires_at": sent.expires_at.isoformat()}


@router.post("/api/votes/verify", tags=["voting"])
def api_verify(body: CodeConfirm, request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """Check the code; answers a voter token (also set as a cookie) for ``POST /api/votes``."""
    token = codes.confirm_code(engine, campaign_id_of(request, engine), body.kind, body.address, body.code,
                                client_ip(request), settings)
    response = JSONResponse({"token": token, "expires_in": settings.voter_session_seconds})
    _set_cookie(response, token, settings.voter_session_seconds, request.url.scheme == "https")
    return response


#: threads that may cast votes at once where no vote lane serves (a test client without the app's
#: lifespan): enough to keep the database busy, few enough that the interpreter does not thrash
#: between dozens of threads
VOTE_THREADS = 4
#: the limiter of each event loop: its waiters belong to the loop they wait in (each test client
#: runs its own), and a loop that is gone takes its own with it
_vote_threads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary())


def vote_threads() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _vote_threads.get(loop)
    if limiter is None:
        limiter = _vote_threads[loop] = anyio.CapacityLimiter(VOTE_THREADS)
    return limiter


@router.post("/api/votes", status_code=201, tags=["voting"], openapi_extra={"parameters": [
    {"name": "Authorization", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "Bearer TOKEN, the token of POST /api/votes/verify (or its cookie)"}]})
async def api_vote(body: VoteRequest, request: Request) -> dict[str, Any]:
    """One vote for a shortlisted candidate, by a verified voter (``Authorization: Bearer TOKEN``,
    or the ``jingong_voter`` cookie that verification sets)."""
    # (a well-formed vote is answered by web.vote_path before it reaches this route; this route is
    # the documentation, and answers what that path leaves to FastAPI)
    return await cast_over_http(request, body.nomination_id)


async def cast_over_http(request: Request, nomination_id: int) -> dict[str, Any]:
    """The vote of ``POST /api/votes``: the voter of the request's token, through the app's vote
    lane when it serves this loop, else in a worker thread; the answer's fields, or the refusal."""
    # The token is read from the request itself: declared as Header and Cookie parameters, FastAPI
    # re-inspects their annotations on every request (about a tenth of the app's time per vote
    # under cProfile)
    headers = request.headers
    token = _token(headers.get("authorization"), request.cookies.get(COOKIE) if "cookie" in headers else None)
    engine: Engine = request.app.state.engine
    settings: Settings = request.app.state.settings
    ip = client_ip(request)
    cid = await campaign_id_async(request, engine)
    voter = identities.voter_of_token(token, cid, settings)
    lane: BatchingLane | None = request.app.state.vote_lane
    if lane is not None and lane.serves_this_loop():
        receipt = await lane.cast(cid, nomination_id, voter, ip, settings)
    else:
        receipt = await anyio.to_thread.run_sync(casting.cast_vote, engine, cid, nomination_id, voter, ip,
                                                 settings, limiter=vote_threads())
    return {"vote_id": receipt.vote_id, "nomination_id": receipt.nomination_id, "day": receipt.day,
            "candidates_left_today": receipt.candidates_left_today, "votes": receipt.votes,
            "receipt": receipt.receipt_code}


@router.get("/api/votes/tally", tags=["voting"])
def api_tally(session: SessionDep, campaign: CampaignDep, user: CurrentUser) -> dict[str, Any]:
    """The live tally (or the frozen one after the close), with the counters checked against the rows."""
    cid = campaign.id or 0
    standings = tally.standings(session, cid)
    return {"frozen": standings.frozen,
            "tally": [{"nomination_id": r.nomination_id, "name": r.name, "votes": r.votes} for r in standings.rows],
            "counter_mismatches": [m.__dict__ for m in tally.verify(session, cid)]}


@router.get("/api/votes/flags", tags=["voting"])
def api_flags(session: SessionDep, campaign: CampaignDep, user: CurrentUser) -> list[dict[str, Any]]:
    cid = campaign.id or 0
    monitor.scan_flags(session, cid)
    return [{"id": f.id, "kind": f.kind, "key": f.key, "minute": monitor.minute_local(f.minute, campaign.timezone)
             .isoformat(), "count": f.count, "threshold": f.threshold} for f in monitor.list_flags(session, cid)]


@router.post("/api/votes/{vote_id}/invalidate", tags=["voting"],
             dependencies=[CsrfChecked])
def api_invalidate(vote_id: Id, body: InvalidateRequest, session: SessionDep,
                   user: Annotated[User, Depends(require("votes"))]) -> dict[str, Any]:
    vote = tally.invalidate(session, vote_id, actor=bulk.actor_of(user), reason=body.reason)
    return {"vote_id": vote.id, "valid": vote.valid, "reason": vote.invalid_reason}


# --- the public voting page --------------------------------------------------------------------


def _vote_page(request: Request, session: Any, campaign: Any, *, voter: int | None, error: str | None = None,
               pending: dict[str, str] | None = None, status_code: int = 200, at: int | None = None) -> Response:
    stage = campaigns.get_stage(session, campaign.id or 0, StageName.VOTING)
    rules = campaigns.spec_of(campaign).voting
    on_ballot = windows.candidates(session, campaign.id or 0)
    rows = [c for c in public_lists.deeds_rows(session, campaign) if c.id in on_ballot]
    counts = tally.tally(session, campaign.id or 0) if rules.show_counts_publicly else None
    return render(request, "public/vote.html", {
        "campaign": campaign, "stage": stage, "open": stage.opens_at <= clock.now() < stage.closes_at,
        "candidates": rows, "voter": voter, "error": error, "pending": pending, "counts": counts, "rules": rules,
        # the message of a vote goes next to the button pressed, not to the top of a long page
        "error_at": at if error and any(c.id == at for c in rows) else None,
        "flash_at": at if any(c.id == at for c in rows) else None,
    }, status_code=status_code)


def _voter_or_none(request: Request, token: str | None, campaign_id: int) -> int | None:
    try:
        return identities.voter_of_token(token, campaign_id, request.app.state.settings)
    except JingongError:
        return None


@router.get("/vote", include_in_schema=False)
def vote_page(request: Request, session: SessionDep, campaign: CampaignDep,
              jingong_voter: Annotated[str | None, Cookie()] = None) -> Response:
    voted = request.query_params.get("voted", "")
    return _vote_page(request, session, campaign, voter=_voter_or_none(request, jingong_voter, campaign.id or 0),
                      at=int(voted) if voted.isdigit() and len(voted) < 10 else None)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/vote/code", include_in_schema=False)
async def vote_code(request: Request, engine: EngineDep) -> Response:
    form = await _form(request)
    pending = {"kind": form.get("kind", "email"), "address": form.get("address", "")[:254]}
    try:
        sent = codes.request_code(engine, campaign_id_of(request, engine), pending["kind"], pending["address"],
                                   client_ip(request), request.app.state.settings)
    except JingongError as exc:
        return _page_after(request, engine, error=message_zh(exc), status_code=status_of(exc), exc=exc,
                           pending=pending if isinstance(exc, RateLimited) else None)
    pending["sent_to"] = sent.masked
    return _page_after(request, engine, pending=pending)


@router.post("/vote/verify", include_in_schema=False)
async def vote_verify(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    form = await _form(request)
    pending = {"kind": form.get("kind", "email"), "address": form.get("address", "")[:254], "sent_to": ""}
    try:
        token = codes.confirm_code(engine, campaign_id_of(request, engine), pending["kind"], pending["address"],
                                    form.get("code", "")[:32], client_ip(request), settings)
    except JingongError as exc:
        return _page_after(request, engine, error=message_zh(exc), status_code=status_of(exc), exc=exc,
                           pending=pending)
    response = flash.redirect(request, "/vote", "验证成功，请为您支持的候选人投票")
    _set_cookie(response, token, settings.voter_session_seconds, request.url.scheme == "https")
    return response


@router.post("/vote/{nomination_id}", include_in_schema=False)
def vote_cast(nomination_id: Id, request: Request, engine: EngineDep,
              jingong_voter: Annotated[str | None, Cookie()] = None) -> Response:
    cid = campaign_id_of(request, engine)
    try:
        settings = request.app.state.settings
        voter = identities.voter_of_token(jingong_voter, cid, settings)
        receipt = casting.cast_vote(engine, cid, nomination_id, voter, client_ip(request), settings)
    except JingongError as exc:
        return _page_after(request, engine, error=message_zh(exc), status_code=status_of(exc), exc=exc,
                           at=nomination_id)
    msg = (f"投票成功！今天还可为{receipt.candidates_left_today}名候选人投票。您的投票回执码：{receipt.receipt_code}"
           "（请保存，可在“投票回执查询”页核对是否计入）")
    return flash.redirect(request, f"/vote?voted={nomination_id}#c{nomination_id}", msg)


def _page_after(request: Request, engine: Engine, *, error: str | None = None, status_code: int = 200,
                exc: JingongError | None = None, pending: dict[str, str] | None = None,
                at: int | None = None) -> Response:
    with unit_of_work(engine, readonly=True) as session:
        campaign = campaigns.get_campaign(session)
        voter = _voter_or_none(request, request.cookies.get(COOKIE), campaign.id or 0)
        response = _vote_page(request, session, campaign, voter=voter, error=error, pending=pending,
                              status_code=status_code, at=at)
    retry = getattr(exc, "retry_after", None)
    if retry:
        response.headers["Retry-After"] = str(retry)
    return response


# --- the committee's view ----------------------------------------------------------------------


@router.get("/committee/votes", include_in_schema=False)
def committee_votes(request: Request, session: SessionDep, campaign: CampaignDep, user: CurrentUser) -> Response:
    cid = campaign.id or 0
    monitor.scan_flags(session, cid)
    standings = tally.standings(session, cid)
    wanted = request.query_params.get("nomination") or ""
    recent = tally.list_votes(session, cid, nomination_id=int(wanted) if wanted.isdigit() else None, limit=100)
    return render(request, "committee/votes.html", {
        "campaign": campaign, "tally": standings.rows, "frozen": standings.frozen,
        "mismatches": tally.verify(session, cid), "flags": monitor.list_flags(session, cid),
        "flag_labels": FLAG_LABELS_ZH, "recent": recent, "names": standings.names(),
        "minute_local": lambda m: monitor.minute_local(m, campaign.timezone),
        "may_invalidate": accounts.may(Role(user.role), "votes"),
    })


@router.post("/committee/votes/{vote_id}/invalidate", include_in_schema=False,
             dependencies=[CsrfChecked])
async def committee_invalidate(vote_id: Id, request: Request, session: SessionDep,
                               user: Annotated[User, Depends(require("votes"))]) -> Response:
    form = await _form(request)
    try:
        # the request's own transaction: a second one would wait for its write lock on SQLite
        tally.invalidate(session, vote_id, actor=bulk.actor_of(user), reason=form.get("reason", "")[:2000])
    except JingongError as exc:  # refused before anything changed
        return flash.redirect(request, "/committee/votes", message_zh(exc), "error")
    return flash.redirect(request, "/committee/votes", f"第{vote_id}号票已作废")
