"""The JSON API under /api (and /healthz). Thin: parse, check who asks, call one service."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse

from accounts import login
from accounts import service as accounts
from accounts.models import Role, User
from campaigns import service as campaigns
from config.campaign import CampaignSpec
from core import clock
from core.errors import Forbidden, NotFound
from nominations import attachments, drafts
from nominations import public as public_lists
from nominations import queries as lists
from nominations import service as nominations
from nominations.models import Nomination, NominationKind
from nominations.states import STATE_LABELS_ZH, State
from objections import receipts as objection_receipts
from objections import service as objections
from web import committee_review, security
from web.deps import (
    AdminUser,
    CampaignDep,
    CsrfChecked,
    CurrentUser,
    EngineDep,
    SessionDep,
    SettingsDep,
    SpecDep,
)
from web.errors import outcome_rows
from web.schemas import (
    MAX_ID,
    AttachmentOut,
    BulkIn,
    Credentials,
    EventIn,
    NominationCreate,
    NominationFields,
    NominationOut,
    ObjectionIn,
    ObjectionReceiptIn,
    WithdrawIn,
)
from web.uploads import send_file, store_upload
from workflow import applicants, bulk, queries

router = APIRouter()


def token_path() -> Any:
    return Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


def id_path() -> Any:  # a fresh Path per parameter: FastAPI binds the object to one name
    return Path(ge=1, le=MAX_ID)


def campaign_view(session: Any, campaign: Any, spec: CampaignSpec) -> dict[str, Any]:
    now = clock.now()
    stage_rows = campaigns.list_stages(session, campaign.id or 0)
    local = spec.to_local
    counts = nominations.count_by_state(session, campaign.id or 0)
    open_now = [s.name for s in stage_rows if campaigns.is_open(s, now)]
    return {
        "slug": campaign.slug,
        "name": campaign.name,
        "award_name": campaign.award_name,
        "edition": campaign.edition,
        "timezone": spec.timezone,
        "now": local(now).isoformat(),
        "open_stage": open_now[0] if open_now else None,
        "open_stages": open_now,
        "stages": [
            {
                "name": s.name,
                "title": s.title,
                "opens_at": local(s.opens_at).isoformat(),
                "closes_at": local(s.closes_at).isoformat(),
                "open_now": campaigns.is_open(s, now),
                "opened_at": local(s.opened_at).isoformat() if s.opened_at else None,
                "closed_at": local(s.closed_at).isoformat() if s.closed_at else None,
            }
            for s in stage_rows
        ],
        "awards": {"main": spec.awards.main, "finalist": spec.awards.finalist},
        "shortlist": {"min": spec.shortlist.min, "max": spec.shortlist.max},
        "counts": {state.value: counts.get(state, 0) for state in State},
        "office": spec.office.model_dump(),
    }


@router.get("/api/campaign", tags=["public"])
def get_campaign(session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> dict[str, Any]:
    """The campaign: its stages with their windows (ISO 8601, +08:00), which is open now, counts."""
    return campaign_view(session, campaign, spec)


# --- applicants: everything by the unguessable token ----------------------------------------------


def nomination_out(request: Request, session: Any, nomination: Nomination, spec: CampaignSpec) -> NominationOut:
    view = applicants.status_view(session, nomination, spec)
    form_fields = set(NominationFields.model_fields) | {"kind"}
    return NominationOut(
        id=nomination.id or 0,
        token=nomination.token,
        status_url=f"{request.app.state.settings.public_base_url.rstrip('/')}/status/{nomination.token}",
        kind=str(nomination.kind),
        state=str(nomination.state),
        state_zh=STATE_LABELS_ZH[State(nomination.state)],
        version=nomination.version,
        track=nomination.track,
        form=nomination.model_dump(mode="json", include=form_fields),
        deadline=spec.to_local(view["deadline"]),
        editable=view["editable"],
        seconds_left=view["seconds_left"],
        problems=[{"field": p.field, "message": p.message, "message_zh": p.message_zh} for p in view["problems"]],
        attachments=[AttachmentOut.model_validate(a, from_attributes=True) for a in view["attachments"]],
        history=[{"event": r.event, "from_state": r.from_state, "to_state": r.to_state,
                  "at": spec.to_local(r.at), "received_at": spec.to_local(r.received_at or r.at),
                  "actor": r.actor, "reason": r.reason} for r in view["history"]],
    )


@router.post("/api/nominations", status_code=201, response_model=NominationOut, tags=["applicants"])
def create_nomination(body: NominationCreate, request: Request, session: SessionDep, campaign: CampaignDep,
                      spec: SpecDep) -> NominationOut:
    """Save a new draft (any fields may be missing). Keep the returned token: it is the only key."""
    nomination = drafts.create(session, campaign, spec, body.changes() | {"kind": body.kind})
    return nomination_out(request, session, nomination, spec)


@router.get("/api/nominations/{token}", response_model=NominationOut, tags=["applicants"])
def read_nomination(request: Request, session: SessionDep, spec: SpecDep,
                    token: str = token_path()) -> NominationOut:
    nomination = nominations.get_by_token(session, token)
    return nomination_out(request, session, nomination, spec)


@router.patch("/api/nominations/{token}", response_model=NominationOut, tags=["applicants"])
def update_nomination(body: NominationFields, request: Request, session: SessionDep, spec: SpecDep,
                      token: str = token_path()) -> NominationOut:
    """Change fields of a draft (only the fields sent). Refused after the deadline."""
    nomination = nominations.get_by_token(session, token)
    drafts.update(session, nomination, spec, body.changes())
    return nomination_out(request, session, nomination, spec)


@router.post("/api/nominations/{token}/submit", response_model=NominationOut, tags=["applicants"])
def submit_nomination(request: Request, session: SessionDep, spec: SpecDep,
                      token: str = token_path()) -> NominationOut:
    """Submit the draft: refused with the missing fields listed, or after the deadline."""
    nomination = nominations.get_by_token(session, token)
    applicants.submit(session, nomination)
    return nomination_out(request, session, nomination, spec)


@router.post("/api/nominations/{token}/withdraw", response_model=NominationOut, tags=["applicants"])
def withdraw_nomination(body: WithdrawIn, request: Request, session: SessionDep, spec: SpecDep,
                        token: str = token_path()) -> NominationOut:
    nomination = nominations.get_by_token(session, token)
    applicants.withdraw(session, nomination, body.reason)
    return nomination_out(request, session, nomination, spec)


@router.post(
    "/api/nominations/{token}/attachments", status_code=201, response_model=AttachmentOut, tags=["applicants"],
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"kind": {"type": "string", "enum": ["photo", "certificate", "award", "achievement", "other"]},
                       "file": {"type": "string", "format": "binary"}}}}}}},
)
async def upload_attachment(request: Request, token: str = token_path()) -> AttachmentOut:
    """Upload a photo or evidence (multipart: ``kind``, ``file``). Judged by content: images, PDF,
    PPT/PPTX, video. Too large: 413, nothing kept. Other types: 415."""
    attachment = await store_upload(request, token)
    return AttachmentOut.model_validate(attachment, from_attributes=True)


@router.get("/api/nominations/{token}/attachments/{attachment_id}", tags=["applicants"],
            response_class=FileResponse)
def download_attachment(session: SessionDep, settings: SettingsDep, token: str = token_path(),
                        attachment_id: int = id_path()) -> FileResponse:
    nomination = nominations.get_by_token(session, token)
    return send_file(attachments.fetch(session, settings.uploads_dir, attachment_id, nomination=nomination))


# --- public -----------------------------------------------------------------------------------------


@router.post("/api/objections", status_code=201, tags=["public"])
def lodge_objection(body: ObjectionIn, session: SessionDep, campaign: CampaignDep) -> dict[str, Any]:
    """Lodge an objection against a formal candidate during the public notice."""
    lodged = objections.lodge(session, campaign, body.nomination_id, name=body.name, contact=body.contact,
                              facts=body.facts)
    objection = lodged.objection
    return {"id": objection.id, "status": objection.status, "nomination_id": objection.nomination_id,
            "receipt": lodged.receipt}


@router.post("/api/objections/receipt", tags=["public"])
def objection_receipt(body: ObjectionReceiptIn, session: SessionDep, campaign: CampaignDep) -> dict[str, Any]:
    """What the holder of an objection's receipt number may see: received when, and the outcome."""
    found = objection_receipts.lookup(session, campaign.id or 0, body.receipt)
    if found is None:
        raise NotFound("no objection with this receipt number", message_zh="未找到该回执号对应的异议，请核对后重试")
    return {"received_at": found.received_at.isoformat(), "status": found.status.value,
            "status_zh": found.status_zh, "ruled_at": found.ruled_at.isoformat() if found.ruled_at else None}


@router.get("/api/public/candidates", tags=["public"])
def public_candidates(session: SessionDep, campaign: CampaignDep) -> list[dict[str, Any]]:
    """The shortlisted candidates' deeds once published (never phone or birth date)."""
    return [row.as_public() for row in public_lists.deeds_rows(session, campaign)]


# --- committee ---------------------------------------------------------------------------------------


@router.post("/api/session", tags=["committee"])
def log_in(body: Credentials, request: Request, engine: EngineDep, settings: SettingsDep) -> dict[str, Any]:
    """Log in; the answer carries the CSRF token to send as X-CSRF-Token on every change.
    Too many failures lock the account for a while (429 with Retry-After)."""
    result = login.attempt(engine, settings, body.username, body.password,
                           address=security.client_address(request), previous_token=security.session_token(request))
    csrf = security.log_in(request, result.token)
    return {"username": result.username, "role": result.role, "csrf_token": csrf}


@router.delete("/api/session", status_code=204, tags=["committee"])
def log_out(request: Request, session: SessionDep) -> Response:
    """Log out: the session ends on the server, so a copy of the cookie is worthless too."""
    token = security.session_token(request)
    if token is not None:
        accounts.log_out(session, token)
    security.log_out(request)
    return Response(status_code=204)


def _row(n: Nomination, user: User) -> dict[str, Any]:
    return {"id": n.id, "name": n.name, "employer": n.employer, "kind": n.kind, "state": n.state,
            "track": n.track, "version": n.version, "unit_id": n.unit_id,
            "priority_conditions": n.priority_conditions, "conflict": bulk.has_conflict(user, n)}


@router.get("/api/committee/nominations", tags=["committee"])
def committee_list(request: Request, response: Response, user: CurrentUser, session: SessionDep,
                   campaign: CampaignDep,
                   state: Annotated[State | None, Query()] = None,
                   q: Annotated[str | None, Query(max_length=100, description="name, employer, unit, grade or number")]
                   = None,
                   unit: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                   kind: Annotated[NominationKind | None, Query()] = None,
                   grade: Annotated[str | None, Query(max_length=16)] = None,
                   over: Annotated[bool | None, Query(description="only over (true) or within (false) quota")]
                   = None,
                   sort: Annotated[str | None, Query(max_length=16, description="a column; -column descends")]
                   = None,
                   page: Annotated[int | None, Query(ge=1, le=100000)] = None,
                   per_page: Annotated[int | None, Query(ge=1, le=200)] = None) -> list[dict[str, Any]]:
    """The campaign's nominations, searched, filtered and sorted (by number unless ``sort``);
    with ``page`` or ``per_page``, one page (50 by default) and its total in ``X-Total-Count``."""
    paged = page is not None or per_page is not None
    query = committee_review.list_query(request.query_params, per_page=(per_page or 50) if paged else None)
    if sort is None:
        query = replace(query, sort="id")
    result = lists.search(session, campaign.id or 0, query)
    response.headers["X-Total-Count"] = str(result.total)
    return [_row(r.nomination, user) | {"over_quota": r.over_quota, "unit_name": r.unit_name}
            for r in result.rows]


@router.get("/api/committee/nominations/{nomination_id}", tags=["committee"])
def committee_read(user: CurrentUser, session: SessionDep, spec: SpecDep,
                   nomination_id: int = id_path()) -> dict[str, Any]:
    n = nominations.get(session, nomination_id)
    return _row(n, user) | {
        "form": n.model_dump(mode="json", include=set(NominationFields.model_fields) | {"kind"}),
        "history": [{"event": r.event, "from_state": r.from_state, "to_state": r.to_state,
                     "at": spec.to_local(r.at).isoformat(),
                     "received_at": spec.to_local(r.received_at or r.at).isoformat(),
                     "actor": r.actor, "reason": r.reason}
                    for r in queries.history(session, nomination_id)],
        "prior_awards": [{"edition": p.edition, "award": p.award}
                         for p in nominations.prior_awards_of(session, n, spec)],
        "over_quota": nominations.is_over_quota(session, n),
        "paper_copies_received": n.paper_copies_received,
    }


@router.post("/api/committee/nominations/{nomination_id}/events", tags=["committee"],
             dependencies=[CsrfChecked])
def committee_fire(body: EventIn, user: CurrentUser, session: SessionDep,
                   nomination_id: int = id_path()) -> dict[str, Any]:
    """Fire an event (role-checked; members never act on their own unit's nominations)."""
    data = {"track": body.track.value} if body.track else None
    record = bulk.fire(session, user, nomination_id, body.event, reason=body.reason, data=data,
                       expected_version=body.expected_version)
    n = nominations.get(session, nomination_id)
    return {"id": n.id, "state": n.state, "version": n.version, "changed": record is not None}


@router.post("/api/committee/bulk", tags=["committee"], dependencies=[CsrfChecked])
def committee_bulk(body: BulkIn, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """One event on many nominations. ``mode: "all"`` (default): in one transaction, all change or
    none, and the first refusal is the answer. ``mode: "each"``: row by row, as the screening page
    does; the answer is 200 with every row's outcome (``refused_zh`` says why a row stayed)."""
    data = {"track": body.track.value} if body.track else None
    if body.mode == "each":
        outcomes = bulk.fire_each(session, user, list(body.ids), body.event, reason=body.reason, data=data)
        rows = outcome_rows(outcomes)
        return {"changed": sum(1 for r in rows if r["changed"]), "refused": sum(1 for r in rows if r["refused"]),
                "requested": len(body.ids), "rows": rows}
    changed = bulk.fire_many(session, user, list(body.ids), body.event, reason=body.reason, data=data)
    return {"changed": changed, "requested": len(body.ids)}


@router.get("/api/committee/users", tags=["committee"])
def committee_users(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    if not accounts.may(Role(user.role), "users"):
        raise Forbidden(f"role {user.role} may not list users", "您的角色无权管理用户")
    return [{"id": u.id, "username": u.username, "role": u.role, "active": u.active, "unit_id": u.unit_id}
            for u in accounts.list_users(session)]


@router.delete("/api/committee/users/{user_id}/sessions", tags=["committee"], dependencies=[CsrfChecked])
def committee_end_sessions(admin: AdminUser, session: SessionDep, user_id: int = id_path()) -> dict[str, Any]:
    """The office admin ends every session of a member (who must log in again)."""
    member = accounts.get_user(session, user_id)
    ended = accounts.end_sessions(session, member, actor=accounts.actor_of(admin))
    return {"username": member.username, "ended": ended}


