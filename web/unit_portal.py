"""The nominating unit's own page: ``GET /unit/{token}`` (the unit link, unguessable, from the
office or from the unit's mails) lists the unit's nominations with their state and the unit's
quota use, with links to each nomination's forms. Private: never cached, never indexed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from campaigns import units
from nominations import standing
from web.deps import SessionDep, SpecDep
from web.templating import render

router = APIRouter(include_in_schema=False)

PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex, nofollow"}


@router.get("/unit/{token}")
def unit_page(token: str, request: Request, session: SessionDep, spec: SpecDep) -> Response:
    unit = units.find_by_link(session, token)
    response = render(request, "unit.html", {"standing": standing.standing(session, unit), "token": token,
                                                "spec": spec})
    response.headers.update(PRIVATE_HEADERS)
    return response
