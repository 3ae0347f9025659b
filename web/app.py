"""The FastAPI application: ``create_app()`` wires routes, sessions, error answers and, in the
lifespan, the scheduler, the mail sender and the vote lane (PostgreSQL) or group writer (SQLite)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from starlette.middleware.sessions import SessionMiddleware

from accounts import service as accounts
from config import secrets
from config.settings import Settings, get_settings
from notifications.background import start_sender
from stages.scheduler import start_scheduler
from storage import public_version
from storage.db import get_engine, is_sqlite, unit_of_work
from voting.batch import BatchingLane
from voting.group import GroupWriter
from voting.lane import VoteLane
from web import errors
from web.admission import Admission
from web.arrival import ArrivalStamp
from web.forwarded import ForwardedFor
from web.headers import JingongApp
from web.pagecache import PageCache
from web.vote_path import VotePath
from wiring.bootstrap import bootstrap

log = logging.getLogger("jingong.web")
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _start_background(app: FastAPI, engine: Engine) -> list[Any]:
    """The scheduler and the mail sender."""
    handles: list[Any] = []
    settings: Settings = app.state.settings
    app.state.scheduler = None
    app.state.sender = None
    if settings.scheduler_enabled:
        app.state.scheduler = start_scheduler(engine)
        handles.append(app.state.scheduler)
    app.state.sender = start_sender(engine)
    handles.append(app.state.sender)
    return handles


def ensure_admin(engine: Engine, settings: Settings) -> None:
    """First start: an office admin account, its password from ADMIN_PASSWORD or printed once."""
    for attempt in range(2):
        try:
            with unit_of_work(engine) as session:
                generated = accounts.ensure_admin(session, settings.admin_username, settings.admin_password)
            break
        except IntegrityError:
            # several instances starting at once: another one created the account between our
            # check and our insert, and the second look finds it (any other clash stays an error)
            if attempt:
                raise
    if generated:
        print(f"created office admin {settings.admin_username!r} with password: {generated}\n"
              "(shown once; change it with `jingong users passwd`)", flush=True)


def create_app(
    engine: Engine | None = None,
    settings: Settings | None = None,
    *,
    background: bool = True,
    create_admin: bool = True,
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or get_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bootstrap()
        if create_admin:
            ensure_admin(engine, settings)
        # Votes are queued in this event loop and written in batches (voting/batch.py): by the
        # vote lane on PostgreSQL, by the group writer on SQLite; without a lifespan they go to
        # worker threads through voting.casting.cast_vote. Opened before the background work
        # starts, so a database that refuses it stops nothing half-started.
        lane: BatchingLane | None = None
        if engine.dialect.name == "postgresql":
            lane = await VoteLane.open(engine)
        elif is_sqlite(engine):
            lane = await GroupWriter.open(engine)
        app.state.vote_lane = lane
        handles: list[Any] = []
        try:
            if background:
                handles = _start_background(app, engine)
            yield
        finally:
            app.state.vote_lane = None
            if lane is not None:
                await lane.close()
            for handle in reversed(handles):
                handle.shutdown()

    app = JingongApp(
        title="jingong",
        summary="The craftsman-award (津工精匠) selection service",
        description="Applicant portal, committee dashboard, public pages and this JSON API. "
        "Times are ISO 8601 with the campaign's offset (+08:00).",
        version="0.1.0",
        lifespan=lifespan,
    )
    # CSP, nosniff, no-referrer, DENY, Permissions-Policy (web/headers.py); HSTS behind https
    app.https = settings.public_base_url.startswith("https://")
    app.state.engine = engine
    app.state.settings = settings
    app.state.scheduler = None
    app.state.sender = None
    app.state.vote_lane = None
    bootstrap()
    app.add_middleware(
        SessionMiddleware,
        secret_key=secrets.secret_key(settings),
        session_cookie="jingong_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
    )
    # the last added is the outermost: the arrival is stamped before a request waits for anything
    app.add_middleware(Admission)
    # a well-formed vote is answered here, before the admission, the session and the routing
    app.add_middleware(VotePath)
    # the client's address from X-Forwarded-For, from the trusted proxies only (web/forwarded.py),
    # outside the vote path: a vote through the proxy is limited by its voter's address
    app.add_middleware(ForwardedFor, trusted=settings.forwarded_allow_ips)
    app.add_middleware(ArrivalStamp)
    # outermost: a public page from memory waits for nothing (web/pagecache.py); HEAD for every GET
    public_version.configure(engine, settings)
    app.add_middleware(PageCache, store=lambda: public_version.store_for(engine),
                       lifetime=settings.page_cache_seconds, quiet_lifetime=settings.page_cache_quiet_seconds)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    from web import (
        api,
        committee,
        committee_review,
        committee_units,
        documents,
        exports,
        health,
        office,
        portal,
        public,
        transparency,
        unit_portal,
        votes,
    )

    # The voting routes are matched first: the crowd's POST /api/votes then skips matching every
    # other route (no path of one router matches another's, tests/web/test_routes.py checks).
    app.include_router(votes.router)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(portal.router)
    app.include_router(office.router)
    app.include_router(committee.router)
    app.include_router(committee_review.router)
    app.include_router(committee_units.router)
    app.include_router(unit_portal.router)
    app.include_router(public.router)
    app.include_router(exports.router)
    app.include_router(transparency.router)
    app.include_router(documents.router)
    from web import committee_decisions, public_documents  # the formal documents (公示, 表彰决定)

    app.include_router(committee_decisions.router)
    app.include_router(public_documents.router)
    return app
