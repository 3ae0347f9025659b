"""The committee's search boxes take whatever is typed or sent: control characters (a NUL, which
PostgreSQL refuses in text) are dropped, never a 500 (found by schemathesis)."""

from __future__ import annotations

from typing import Any

from nominations.states import State
from storage.db import unit_of_work
from tests.factories import create_nomination


def test_control_characters_in_the_search_are_dropped_not_a_500(as_member: Any, engine: Any, campaign: Any,
                                                                 spec: Any) -> None:
    with unit_of_work(engine) as session:
        create_nomination(session, campaign, spec, State.SUBMITTED, name="张巧匠")
    member, _ = as_member("office")
    for params in ({"q": "张\x00"}, {"grade": "\x00"}, {"q": "\x01\x02", "grade": "技\x00师"}):
        api = member.get("/api/committee/nominations", params=params)
        assert api.status_code == 200, (params, api.text)
        page = member.get("/committee/screening", params={**params, "state": "all"})
        assert page.status_code == 200, (params, page.text[:300])
    found = member.get("/api/committee/nominations", params={"q": "张\x00"}).json()
    assert [row["name"] for row in found] == ["张巧匠"]


def test_every_committee_filter_takes_a_nul(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    member, _ = as_member("office")
    for path, params in (("/committee/mail", {"q": "a\x00", "kind": "\x00", "status": "\x00"}),
                         ("/committee/audit", {"actor": "\x00", "event": "\x00", "action": "\x00",
                                               "nomination": "\x00", "since": "\x00"}),
                         ("/committee/exports/audit.xlsx", {"actor": "x\x00"}),
                         ("/committee/shortlist", {"q": "\x00"}), ("/committee/review", {"q": "\x00"})):
        response = member.get(path, params=params)
        assert response.status_code < 500, (path, response.text[:300])
