"""The committee's workspace: the screening queue (search, filters, sort, pages; bulk acts row
by row), the review board (one compact row per candidate, actions in one menu) and the
reviewers' score sheets. The pages' state is the URL, so a filtered, sorted page can be shared
and the back button works."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import QueryParams

from accounts.models import Role, User
from campaigns import service as campaigns
from config.campaign import Track
from core.errors import JingongError
from nominations import queries as lists
from nominations import scores
from nominations import service as nominations
from nominations.models import NominationKind
from nominations.queries import ListQuery
from nominations.states import State
from voting import tally
from web import flash
from web.committee import _act_data, _events_for, _notes, _safe_next, page
from web.deps import CampaignDep, CsrfChecked, CurrentUser, SessionDep, SpecDep
from web.errors import message_zh, outcome_rows, status_of
from web.schemas import NominationId, typed
from workflow import bulk
from workflow.machine import EVENT_LABELS_ZH, Event

router = APIRouter(prefix="/committee", include_in_schema=False)

PER_PAGE = 50
STATE_VALUES = frozenset(s.value for s in State)
KIND_LABELS_ZH = {NominationKind.UNIT: "单位推荐", NominationKind.SELF: "个人自荐"}
SCREENING_EVENTS = (Event.PASS_SCREENING, Event.REJECT, Event.PASS_OVER)
#: acts on the review board that end a candidacy: apart in the menu, and confirmed first
DESTRUCTIVE = frozenset({Event.WITHDRAW, Event.FAIL_VETTING})
SORT_LABELS = {"id": "编号", "name": "姓名", "unit": "推荐单位", "position": "职务/工种", "grade": "等级",
               "kind": "类型", "priority": "优先条件", "submitted": "提交时间", "state": "状态",
               "over_quota": "超名额"}

#: the sort as a choice in the filter form, for a phone, where the cards have no column headers
SORT_OPTIONS = [{"value": f"{sign}{key}", "label": f"{label}（{order}）"}
                for key, label in SORT_LABELS.items() if key != "priority"
                for sign, order in (("", "升序"), ("-", "降序"))]
SORT_OPTIONS.append({"value": "-priority", "label": "优先条件（倒序）"})


def _small_int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


def list_query(params: QueryParams, *, default_states: tuple[State, ...] = (),
               per_page: int | None = PER_PAGE) -> ListQuery:
    """A committee list's query from the URL: q, state (repeatable; "all" for every state),
    unit, kind, grade, over (1/0), sort ("name", "-name" for descending), page, per_page."""
    raw_states = [s for s in params.getlist("state") if s]
    states = tuple(State(s) for s in raw_states if s in STATE_VALUES)
    if not states and "all" not in raw_states:  # none asked, or none known: the default list
        states = default_states
    kind = params.get("kind")
    sort = params.get("sort") or "priority"
    descending = sort.startswith("-")
    sort = sort.removeprefix("-")
    over = params.get("over")
    per_page = _small_int(params.get("per_page")) or per_page
    return ListQuery(
        text=typed(params.get("q"), 100),
        states=states,
        unit_id=_small_int(params.get("unit")),
        kind=NominationKind(kind) if kind in {k.value for k in NominationKind} else None,
        grade=typed(params.get("grade"), 16) or None,
        over_quota={"1": True, "true": True, "0": False, "false": False}.get((over or "").lower()),
        sort=sort if sort in lists.SORTS else "priority",
        descending=descending,
        page=_small_int(params.get("page")) or 1,
        per_page=per_page,
    )


def _url(params: dict[str, str], **changes: str | None) -> str:
    merged = {k: v for k, v in (params | changes).items() if v not in (None, "")}
    return "/committee/screening" + ("?" + urlencode(merged) if merged else "")


# --- the screening queue ---------------------------------------------------------------------------


@router.get("/screening")
def screening(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
              spec: SpecDep) -> Response:
    params = request.query_params
    q = list_query(params, default_states=(State.SUBMITTED,))
    cid = campaign.id or 0
    result = lists.search(session, cid, q)
    shown = [r.nomination for r in result.rows]
    prior = lists.prior_awards_by_nomination(session, shown, spec)
    files = lists.attachment_counts(session, [n.id or 0 for n in shown])
    rows = [{"r": r, "n": r.nomination, "prior": prior.get(r.nomination.id or 0, []),
             "files": files.get(r.nomination.id or 0, 0), "conflict": bulk.has_conflict(user, r.nomination)}
            for r in result.rows]
    state_value = params.get("state") or State.SUBMITTED.value
    current = {k: v for k, v in {
        "q": q.text, "state": state_value, "unit": str(q.unit_id or ""), "kind": q.kind.value if q.kind else "",
        "grade": q.grade or "", "over": params.get("over") or "",
        "sort": ("-" if q.descending else "") + q.sort if q.sort != "priority" or q.descending else "",
    }.items() if v}
    headers = []
    for key, label in SORT_LABELS.items():
        active = q.sort == key
        target = f"-{key}" if active and not q.descending else key
        headers.append({"key": key, "label": label, "url": _url(current, sort=target, page=None),
                        "aria": ("descending" if q.descending else "ascending") if active else None})
    pager = {"prev": _url(current, page=str(result.page - 1)) if result.page > 1 else None,
             "next": _url(current, page=str(result.page + 1)) if result.page < result.pages else None}
    return page(request, "screening.html", {
        "rows": rows, "result": result, "q": q, "current": current, "headers": headers, "pager": pager,
        "states": list(State), "state": state_value, "units": campaigns.list_units(session, cid),
        "grades": sorted(set(spec.technical_grades) | set(lists.grades_in_use(session, cid))),
        "kinds": KIND_LABELS_ZH, "conditions": {c.code: c.text for c in spec.priority_conditions},
        "events": [(e, EVENT_LABELS_ZH[e]) for e in SCREENING_EVENTS],
        "here": _url(current, page=str(result.page) if result.page > 1 else None),
        "sort_options": SORT_OPTIONS,
    })


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.post("/bulk", dependencies=[CsrfChecked])
async def bulk_post(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep) -> Response:
    """One event on every ticked nomination, row by row: a refused row keeps its state and says
    why, the others change. Answers JSON to the page's script, else back to the list with a note."""
    form = await request.form()
    back = _safe_next(form.get("next"), "/committee/screening")
    ids = [int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit() and len(v) < 10]
    event, reason = form.get("event"), form.get("reason")
    try:
        outcomes = bulk.fire_each(session, user, ids, event if isinstance(event, str) else "",
                                  reason=reason if isinstance(reason, str) else None,
                                  data=_act_data(form, campaign))
    except JingongError as exc:
        if _wants_json(request):
            return JSONResponse({"detail": str(exc), "detail_zh": message_zh(exc)}, status_code=status_of(exc))
        return flash.redirect(request, back, "未执行：" + message_zh(exc), "error")
    changed = sum(1 for o in outcomes if o.changed)
    refused = [o for o in outcomes if o.refused is not None]
    label = EVENT_LABELS_ZH.get(Event(str(event)), str(event))
    summary = f"已对{len(outcomes)}项申报执行“{label}”：{changed}项状态改变"
    if refused:
        summary += f"，{len(refused)}项未执行（原因见各行）"
    if _wants_json(request):
        return JSONResponse({"summary": summary, "changed": changed, "refused": len(refused),
                             "rows": outcome_rows(outcomes)})
    if refused:
        reasons = "；".join(f"{o.nomination_id}号：{message_zh(o.refused)}" for o in refused[:10] if o.refused)
        return flash.redirect(request, back, f"{summary}。{reasons}", "error")
    return flash.redirect(request, back, summary)


# --- the review board and the score sheets ------------------------------------------------------------


REVIEW_STATES = [State.VOTED, State.VETTED, State.ON_HOLD]


def _visible_summaries(session: Any, user: User, ids: list[int], spec: Any) -> tuple[dict[int, Any], set[int]]:
    """The score summaries this member may see, and the candidates they scored themselves."""
    mine = scores.submitted_by(session, user.id or 0, ids) if scores.may_score(user) else set()
    allowed = [i for i in ids if not scores.may_score(user) or i in mine]
    return scores.summaries(session, allowed, spec), mine


@router.get("/review")
def review(request: Request, user: CurrentUser, session: SessionDep, campaign: CampaignDep,
           spec: SpecDep) -> Response:
    cid = campaign.id or 0
    result = lists.search(session, cid, ListQuery(states=tuple(REVIEW_STATES), sort="id", per_page=None))
    shown = [r.nomination for r in result.rows]
    ids = [n.id or 0 for n in shown]
    prior = lists.prior_awards_by_nomination(session, shown, spec)
    summaries, mine = _visible_summaries(session, user, ids, spec)
    rows: list[dict[str, Any]] = []
    for r in result.rows:
        n = r.nomination
        events = _events_for(user, n)
        rows.append({
            "n": n, "unit_name": r.unit_name, "prior": prior.get(n.id or 0, []),
            "tally": tally.tally_of(session, campaign, n), "notes": _notes(session, n.id or 0),
            "finalist_barred": any(p.award == "finalist" for p in prior.get(n.id or 0, [])),
            "events": [e for e in events if e not in DESTRUCTIVE],
            "destructive": [e for e in events if e in DESTRUCTIVE],
            "summary": summaries.get(n.id or 0), "scored": (n.id or 0) in mine,
            "conflict": bulk.has_conflict(user, n),
        })

    def rank(row: dict[str, Any]) -> tuple[float, int, int]:
        total = row["summary"].total.mean if row["summary"] and row["summary"].total else -1.0
        votes = row["tally"] if isinstance(row["tally"], int) else 0
        return (-total, -votes, row["n"].id or 0)

    # by the mean this member may see; the candidates they may not see yet follow, by votes —
    # sorting by a hidden mean would tell a reviewer the others' ranking
    rows.sort(key=rank)
    placed = {t.value: sum(1 for n in shown if n.state in (State.VETTED, State.ON_HOLD) and n.track == t.value)
              for t in Track}
    return page(request, "review.html", {
        "rows": rows, "placed": placed, "awards": spec.awards, "event_labels": EVENT_LABELS_ZH,
        "criteria": scores.criteria_of(spec), "may_score": scores.may_score(user),
        "confirm": {Event.WITHDRAW: "撤回后该申报不再参加评选，确定撤回吗？",
                    Event.FAIL_VETTING: "取消资格后不可恢复，确定取消该候选人的资格吗？"},
    })


def _sheet_context(session: Any, user: User, n: Any, spec: Any) -> dict[str, Any]:
    nid = n.id or 0
    visible = scores.may_see(session, user, nid)
    summary = scores.summaries(session, [nid], spec).get(nid) if visible else None
    mine = scores.sheet_of(session, user.id or 0, nid)
    return {
        "n": n, "unit": campaigns.find_unit(session, n.unit_id), "criteria": scores.criteria_of(spec),
        "remarks": scores.comments_of(session, nid) if visible else [],
        "mine": mine, "summary": summary, "visible": visible,
        "may_score": scores.may_score(user) and n.state in scores.SCORABLE_STATES,
        "scoring_closed": scores.scoring_window(session, n.campaign_id),
        "conflict": bulk.has_conflict(user, n), "reviewer": Role(user.role) == Role.REVIEWER,
        "values": {}, "comments": {},
        "mine_total": sum(mine[c.code].points * c.weight for c in spec.review.criteria if c.code in mine),
    }


@router.get("/review/{nomination_id}")
def score_sheet(nomination_id: NominationId, request: Request, user: CurrentUser, session: SessionDep,
                campaign: CampaignDep, spec: SpecDep) -> Response:
    n = nominations.get_in_campaign(session, campaign.id or 0, nomination_id)
    return page(request, "score_sheet.html", _sheet_context(session, user, n, spec))


@router.post("/review/{nomination_id}/scores", dependencies=[CsrfChecked])
async def score_submit(nomination_id: NominationId, request: Request, user: CurrentUser, session: SessionDep,
                       campaign: CampaignDep, spec: SpecDep) -> Response:
    """A reviewer submits their whole sheet for one candidate; a refusal keeps what was typed."""
    n = nominations.get_in_campaign(session, campaign.id or 0, nomination_id)
    form = await request.form()
    criteria = scores.criteria_of(spec)
    values = {c.code: str(form.get(f"points_{c.code}") or "")[:8] for c in criteria}
    comments = {c.code: str(form.get(f"comment_{c.code}") or "")[:scores.MAX_COMMENT] for c in criteria}
    try:
        scores.submit(session, user, n, spec, values, comments)
    except JingongError as exc:
        context = _sheet_context(session, user, n, spec) | {"values": values, "comments": comments,
                                                             "error": message_zh(exc)}
        return page(request, "score_sheet.html", context, status_code=status_of(exc))
    return flash.redirect(request, f"/committee/review/{nomination_id}", "评分已提交，现可查看全体评审的平均分与分布")
