"""Issue 15, item 3: 编号 in a stable order, a page per candidate with Open Graph tags, the QR
poster (its code is the page's address), server-side thumbnails, ends written as people say them."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.beijing import BEIJING, beijing_until_text
from nominations.states import State
from tests.conftest import beijing
from tests.web.conftest import png_bytes
from tests.web.test_public import make
from web import posters
from web.pagecache import is_public


@pytest.fixture
def shortlist(engine: Any, campaign: Any, spec: Any, clock: Any) -> list[int]:
    ids = [make(engine, campaign, spec, State.SHORTLISTED, name=n).id or 0 for n in ("甲师傅", "乙师傅", "丙师傅")]
    make(engine, campaign, spec, State.SUBMITTED, name="未入围者")
    clock.set(beijing(2021, 7, 2, 9, 0))
    return ids


def test_numbers_follow_the_nominations_and_stay(client: TestClient, shortlist: list[int], engine: Any,
                                                 campaign: Any, spec: Any) -> None:
    rows = client.get("/api/public/candidates").json()
    assert [(r["number"], r["id"], r["name"]) for r in rows] == [
        (1, shortlist[0], "甲师傅"), (2, shortlist[1], "乙师傅"), (3, shortlist[2], "丙师傅")]
    again = client.get("/api/public/candidates").json()
    assert [r["number"] for r in again] == [1, 2, 3]
    page = client.get("/candidates").text
    assert page.index("1号") < page.index("2号") < page.index("3号")
    assert 'href="/candidates/2"' in page and 'data-search="2 乙师傅' in page
    vote = client.get("/vote").text
    assert 'data-number="3"' in vote and "3号" in vote


def test_a_page_per_candidate_with_open_graph(client: TestClient, shortlist: list[int], web_settings: Any,
                                              engine: Any) -> None:
    from nominations.models import Nomination
    from storage.db import unit_of_work

    with unit_of_work(engine) as session:  # a candidate whose photo is gone: the card shows the poster
        row = session.get(Nomination, shortlist[1])
        assert row is not None
        row.photo_attachment_id = None
        session.add(row)
    page = client.get("/candidates/2")
    assert page.status_code == 200
    html = page.text
    base = web_settings.public_base_url.rstrip("/")
    assert f'<meta property="og:url" content="{base}/candidates/2">' in html
    assert '<meta property="og:title" content="2号 乙师傅 · ' in html
    assert f'<meta property="og:image" content="{base}/candidates/2/poster.png">' in html  # no photo: the poster
    assert "扎根一线" in html and 'action="/vote/' + str(shortlist[1]) + '"' in html
    assert "2021年7月10日 24:00" in html and "7月11日 00:00" not in html
    missing = client.get("/candidates/9")
    assert missing.status_code == 404 and "没有编号为9的候选人" in missing.text
    assert client.get("/candidates/0").status_code == 422


def test_pages_before_voting_are_not_public(client: TestClient, engine: Any, campaign: Any, spec: Any) -> None:
    make(engine, campaign, spec, State.SHORTLISTED, name="甲师傅")
    assert client.get("/candidates/1").status_code == 404
    assert client.get("/candidates/1/poster.png").status_code == 404


def test_the_poster_carries_a_qr_code_of_the_page(client: TestClient, shortlist: list[int], web_settings: Any) -> None:
    answer = client.get("/candidates/3/poster.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert "public" in answer.headers["cache-control"]
    image = Image.open(io.BytesIO(answer.content)).convert("L")
    assert image.size == (posters.WIDTH, posters.HEIGHT)
    url = f"{web_settings.public_base_url.rstrip('/')}/candidates/3"
    matrix = [list(row) for row in posters.qr_code(url).matrix]
    size = (len(matrix) + 2 * posters.QR_BORDER) * posters.QR_SCALE
    left = (posters.WIDTH - size) // 2
    half = posters.QR_SCALE // 2
    read = [[1 if _dark(image, (left + (posters.QR_BORDER + c) * posters.QR_SCALE + half,
                                  posters.QR_TOP + (posters.QR_BORDER + r) * posters.QR_SCALE + half)) else 0
             for c in range(len(matrix))] for r in range(len(matrix))]
    assert read == matrix  # the code on the poster is the page's address, module by module
    other = [list(row) for row in posters.qr_code(url.replace("/3", "/2")).matrix]
    assert read != other


def _dark(image: Image.Image, xy: tuple[int, int]) -> bool:
    value = image.getpixel(xy)
    return isinstance(value, int) and value < 128


def test_thumbnails_are_resized_by_the_server(client: TestClient, engine: Any, campaign: Any, spec: Any,
                                              clock: Any) -> None:
    from tests.web.test_api import form_json

    draft = client.post("/api/nominations", json=form_json()).json()
    big = io.BytesIO()
    Image.new("RGB", (600, 800), (10, 120, 200)).save(big, format="PNG")
    client.post(f"/api/nominations/{draft['token']}/attachments", data={"kind": "photo"},
                files={"file": ("me.png", big.getvalue(), "image/png")})
    assert client.post(f"/api/nominations/{draft['token']}/submit").status_code == 200
    from nominations.models import Nomination
    from storage.db import unit_of_work
    from tests.factories import advance

    with unit_of_work(engine) as session:
        nomination = session.get(Nomination, draft["id"])
        assert nomination is not None
        advance(session, nomination, State.SHORTLISTED)
    clock.set(beijing(2021, 7, 2, 9, 0))
    thumb = client.get(f"/public/photos/{draft['id']}?w=120")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (120, 160)
    assert "public" in thumb.headers["cache-control"] and len(thumb.content) < 10_000
    assert client.get(f"/public/photos/{draft['id']}?w=121").status_code == 422
    assert client.get(f"/public/photos/{draft['id']}").content[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_bytes()  # the helper the other upload tests use


def test_candidate_pages_are_cached_like_the_other_public_pages() -> None:
    assert is_public("/candidates/7") and is_public("/candidates/1234") and is_public("/candidates")
    assert not is_public("/candidates/7/poster.png") and not is_public("/candidates/07")
    assert not is_public("/candidates/12345")


def test_an_end_at_midnight_is_written_as_24_00() -> None:
    assert beijing_until_text(datetime(2021, 7, 11, 0, 0, tzinfo=BEIJING)) == "2021年7月10日 24:00"
    assert beijing_until_text(datetime(2021, 5, 31, 18, 0, tzinfo=BEIJING)) == "2021年5月31日 18:00"
    assert beijing_until_text(datetime(2021, 7, 1, 0, 0, 1, tzinfo=BEIJING)) == "2021年7月1日 00:00"
    assert beijing_until_text(None) == ""


def test_numbers_are_stored_when_voting_opens_and_never_move(client: TestClient, engine: Any, campaign: Any,
                                                             spec: Any, clock: Any) -> None:
    """A candidate leaving the list during the vote takes their 编号 away; nobody else's moves, and
    one brought back later gets a new number after all the others (never a number given before)."""
    from sqlmodel import select

    from audit.models import AuditEvent
    from nominations import public
    from nominations.models import Nomination
    from stages import jobs
    from storage.db import unit_of_work
    from tests.factories import OFFICE
    from wiring.bootstrap import bootstrap
    from workflow import service as workflow
    from workflow.machine import Event

    bootstrap()
    ids = [make(engine, campaign, spec, State.SHORTLISTED, name=f"候选{i}").id or 0 for i in range(1, 21)]
    later = make(engine, campaign, spec, State.SCREENED, name="后补者").id or 0
    clock.set(beijing(2021, 7, 2, 9, 0))  # after the calendar's opening instant, before the open step ran
    assert [r["number"] for r in client.get("/api/public/candidates").json()] == list(range(1, 21))  # derived
    assert [r.key for r in jobs.tick(engine) if r.done][-1] == "voting:open"
    with unit_of_work(engine, readonly=True) as session:
        stored = {n.id: n.ballot_number for n in session.exec(select(Nomination))}
        logged = session.exec(select(AuditEvent).where(AuditEvent.action == "ballot_numbers_assigned")).one()
    assert [stored[i] for i in ids] == list(range(1, 21)) and stored[later] is None  # not shortlisted
    assert logged.data == {"count": 20, "highest": 20}
    with unit_of_work(engine) as session:  # the second withdraws during the vote
        workflow.transition(session, ids[1], Event.WITHDRAW, actor=OFFICE, reason="本人申请撤回")
    rows = client.get("/api/public/candidates").json()
    assert [r["number"] for r in rows] == [1, *range(3, 21)]
    assert [r["name"] for r in rows][:3] == ["候选1", "候选3", "候选4"]
    assert "候选20" in client.get("/candidates/20").text  # the poster shared in a chat still finds them
    assert client.get("/candidates/2").status_code == 404
    with unit_of_work(engine) as session:  # someone numbered later: after every number given
        row = session.get(Nomination, later)
        assert row is not None
        row.state = State.SHORTLISTED
        session.add(row)
        session.flush()
        campaign_row = session.merge(campaign)
        assert public.assign_numbers(session, campaign_row) == 1
        assert public.assign_numbers(session, campaign_row) == 0  # once
    numbers = {r["name"]: r["number"] for r in client.get("/api/public/candidates").json()}
    assert numbers["后补者"] == 21 and numbers["候选3"] == 3 and len(numbers) == 20
