"""The public pages over HTTP (SQLite): validators, 304, HEAD, Cache-Control, nothing personal
shared, reads without the write lock."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from campaigns.models import Campaign
from core.clock import ManualClock
from storage import public_version
from tests.voting.conftest import candidates, code_from_outbox, fresh_limits  # noqa: F401 - fixtures


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:  # the HTTP details do not depend on the database
    return sqlite_engine


def test_validators_304_head_and_cache_control(client: TestClient, campaign: Campaign, clock: ManualClock) -> None:
    for path in ("/", "/candidates", "/notice", "/commended", "/vote", "/api/campaign", "/api/public/candidates"):
        page = client.get(path)
        assert page.status_code == 200, path
        etag, modified = page.headers["etag"], page.headers["last-modified"]
        assert page.headers["cache-control"] == "public, max-age=0, must-revalidate"
        assert page.headers["vary"] == "Cookie"
        assert page.headers["content-security-policy"]  # the security headers still wrap it
        same = client.get(path, headers={"If-None-Match": etag})
        assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
        assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
        earlier = formatdate(time.time() - 3600, usegmt=True)
        assert client.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
        assert client.get(path, headers={"If-Modified-Since": "not a date"}).status_code == 200
        head = client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(page.content)) and head.headers["etag"] == etag


def test_head_answers_wherever_get_does(client: TestClient, campaign: Campaign) -> None:
    for path in ("/healthz", "/apply/self", "/calendar.ics", "/static/style.css", "/committee/login"):
        get, head = client.get(path, follow_redirects=False), client.head(path, follow_redirects=False)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers.get("content-type") == get.headers.get("content-type")
    assert client.head("/api/nominations").status_code == 405  # POST only: no GET, no HEAD


def test_a_voters_page_is_never_shared(client: TestClient, make_client: Callable[[], TestClient], engine: Engine,
                                       candidates: list[int]) -> None:  # noqa: F811
    anonymous = client.get("/vote")
    assert "获取验证码" in anonymous.text and "您已完成验证" not in anonymous.text
    voter = make_client()
    assert voter.post("/api/votes/code", json={"kind": "email", "address": "v@example.cn"}).status_code == 202
    done = voter.post("/api/votes/verify", json={"kind": "email", "address": "v@example.cn",
                                                 "code": code_from_outbox(engine, "v@example.cn")})
    assert done.status_code == 200, done.text
    mine = voter.get("/vote")
    assert "您已完成验证" in mine.text
    assert mine.headers["cache-control"] == "private, no-cache" and "etag" not in mine.headers
    others = make_client().get("/vote")
    assert "您已完成验证" not in others.text and others.headers["etag"] == anonymous.headers["etag"]


def test_a_members_pages_are_private(client: TestClient, make_client: Callable[[], TestClient],
                                               make_user: Callable[..., Any], campaign: Campaign) -> None:
    client.get("/")  # the public home page, cached
    member = make_client()
    make_user("office")
    from tests.web.conftest import login

    login(member, "office")
    logged_in = member.get("/")
    assert logged_in.headers["cache-control"] == "private, no-cache"
    assert "etag" not in client.get("/", headers={"Cookie": "jingong_session=x"}).headers
    assert "组委会登录" in client.get("/").text


def test_reads_never_take_the_write_lock(client: TestClient, engine: Engine, campaign: Campaign) -> None:
    """A GET rendered by the application (not from memory) while another process holds SQLite's
    write lock: a read-only unit begins a deferred transaction, so it is answered at once."""
    holder = sqlite3.connect(str(engine.url.database), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        page = client.get("/candidates", headers={"Cookie": "jingong_voter=someone"})  # not from the cache
        assert page.status_code == 200 and time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()




def test_votes_leave_the_pages_in_memory(client: TestClient, make_client: Callable[[], TestClient], engine: Engine,
                                         candidates: list[int]) -> None:  # noqa: F811
    """A crowd voting does not make every page render again: votes move no public version."""
    store = public_version.store_for(engine)
    page = client.get("/candidates")
    before = asyncio.run(store.current())
    assert client.post("/api/votes/code", json={"kind": "email", "address": "w@example.cn"}).status_code == 202
    done = client.post("/api/votes/verify", json={"kind": "email", "address": "w@example.cn",
                                                  "code": code_from_outbox(engine, "w@example.cn")})
    assert done.status_code == 200, done.text
    voted = client.post("/api/votes", json={"nomination_id": candidates[0]})
    assert voted.status_code == 201, voted.text
    assert asyncio.run(store.current()) == before
    reader = make_client()  # the voter's own client now carries its cookie: its pages are private
    assert reader.get("/candidates", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
