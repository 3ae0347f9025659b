"""The app's routers are disjoint: no route of one router matches a path of another, so the order in
which ``create_app`` includes them (the voting routes first, for the crowd) changes no answer."""

from __future__ import annotations

import re

import pytest
from starlette.routing import BaseRoute, Match, Route

from web import api, committee, committee_decisions, exports, portal, public, public_documents, votes

ROUTERS = {"votes": votes.router, "api": api.router, "portal": portal.router, "committee": committee.router,
           "public": public.router, "exports": exports.router, "committee_decisions": committee_decisions.router,
           "public_documents": public_documents.router}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "7", path)


def _routes() -> list[tuple[str, Route]]:
    found: list[tuple[str, Route]] = []
    for name, router in ROUTERS.items():
        found += [(name, r) for r in router.routes if isinstance(r, Route)]
    return found


def _matches(route: BaseRoute, path: str, method: str) -> bool:
    match, _ = route.matches({"type": "http", "path": path, "method": method, "root_path": ""})
    return match is not Match.NONE


@pytest.mark.parametrize("owner,route", _routes(), ids=lambda v: v if isinstance(v, str) else v.path)
def test_no_route_of_another_router_matches(owner: str, route: Route) -> None:
    path = _concrete(route.path)
    for method in sorted(route.methods or {"GET"}):
        clashes = [(name, other.path) for name, other in _routes()
                   if name != owner and _matches(other, path, method)]
        assert clashes == [], f"{method} {path} of {owner} is also matched by {clashes}"


def test_a_clash_is_seen() -> None:
    """The check itself: a parametrised path of one router matches a fixed path of another."""
    probe = Route("/api/{anything}", endpoint=lambda request: None, methods=["POST"])
    assert _matches(probe, _concrete("/api/votes"), "POST")
