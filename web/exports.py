"""Exports: the candidate list and the results to Excel (columns of forms 附件1/附件2), a printable
nomination form, and the campaign calendar as iCalendar."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet
from sqlmodel import Session

from campaigns import service as campaigns
from campaigns.models import Campaign, NominatingUnit
from config.campaign import CampaignSpec
from core import clock
from nominations import attachments
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import STATE_LABELS_ZH, State
from web.deps import CampaignDep, CurrentUser, SessionDep, SpecDep, require
from web.schemas import NominationId
from web.templating import KIND_LABELS_ZH, TRACK_LABELS_ZH, render

router = APIRouter(include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

CANDIDATE_COLUMNS: list[tuple[str, str]] = [
    ("id", "申报编号"), ("kind", "申报方式"), ("unit", "推荐单位"), ("name", "姓名"), ("sex", "性别"),
    ("ethnicity", "民族"), ("birth_date", "出生日期"), ("education", "文化程度"), ("political_status", "政治面貌"),
    ("employer", "单位"), ("position", "职务"), ("technical_grade", "技术等级（职称）"), ("years_of_service", "工龄"),
    ("phone", "联系电话"), ("honours", "已获荣誉"), ("achievements", "主要技术成果"), ("deeds", "主要事迹"),
    ("priority_conditions", "优先推荐条件"), ("state", "状态"), ("paper_copies_received", "纸质材料（份）"),
]
RESULT_STATES = (State.VETTED, State.ON_HOLD, State.PUBLICIZED, State.COMMENDED)


def safe_cell(value: Any) -> Any:
    """Text a user typed never becomes a formula in the sheet."""
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


def _sheet(ws: Worksheet, title: str, header: list[str], rows: list[list[Any]]) -> None:
    ws.title = title
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for row in rows:
        ws.append([safe_cell(v) for v in row])
    for column, _ in enumerate(header, start=1):
        ws.column_dimensions[ws.cell(row=1, column=column).column_letter].width = 16
    ws.freeze_panes = "A2"


def _value(n: Nomination, field: str, units: dict[int, NominatingUnit]) -> Any:
    if field == "kind":
        return KIND_LABELS_ZH.get(str(n.kind), str(n.kind))
    if field == "unit":
        unit = units.get(n.unit_id or 0)
        return unit.name if unit else "（自荐）"
    if field == "state":
        return STATE_LABELS_ZH[State(n.state)]
    if field == "priority_conditions":
        return "、".join(n.priority_conditions or [])
    value = getattr(n, field)
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value) if field == "sex" else value


def candidates_workbook(session: Session, campaign: Campaign, states: list[State] | None) -> bytes:
    units = {u.id or 0: u for u in campaigns.list_units(session, campaign.id or 0)}
    rows = nominations.list_nominations(session, campaign.id or 0, states=states)
    rows = [n for n in rows if n.state != State.DRAFT] if states is None else rows
    wb = Workbook()
    _sheet(wb.active, "推荐人选", ["序号", *[label for _, label in CANDIDATE_COLUMNS]],
           [[i, *[_value(n, f, units) for f, _ in CANDIDATE_COLUMNS]] for i, n in enumerate(rows, start=1)])
    usage = nominations.unit_usage(session, campaign.id or 0)
    plan = [[u.category, u.name, u.quota, usage.get(u.id or 0, 0),
             "是" if usage.get(u.id or 0, 0) > u.quota else ""] for u in units.values()]
    _sheet(wb.create_sheet(), "推荐计划表", ["类别", "单位", "推荐名额（名）", "已推荐（名）", "超出名额"], plan)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def results_workbook(session: Session, campaign: Campaign) -> bytes:
    units = {u.id or 0: u for u in campaigns.list_units(session, campaign.id or 0)}
    rows = nominations.list_nominations(session, campaign.id or 0, states=RESULT_STATES)
    rows.sort(key=lambda n: (n.track != "main", n.id))
    wb = Workbook()
    header = ["序号", "奖项", "姓名", "性别", "民族", "单位", "职务", "技术等级（职称）", "推荐单位", "状态"]
    _sheet(wb.active, "评选结果", header,
           [[i, TRACK_LABELS_ZH.get(n.track or "", ""), n.name or "", str(n.sex or ""), n.ethnicity or "",
             n.employer or "", n.position or "", n.technical_grade or "", _value(n, "unit", units),
             STATE_LABELS_ZH[State(n.state)]] for i, n in enumerate(rows, start=1)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _xlsx(data: bytes, name: str) -> Response:
    return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/committee/exports/candidates.xlsx", dependencies=[Depends(require("exports"))])
def export_candidates(request: Request, session: SessionDep, campaign: CampaignDep) -> Response:
    raw = request.query_params.get("state")
    states = [State(raw)] if raw in {s.value for s in State} else None
    return _xlsx(candidates_workbook(session, campaign, states), f"{campaign.slug}-candidates.xlsx")


@router.get("/committee/exports/results.xlsx", dependencies=[Depends(require("exports"))])
def export_results(session: SessionDep, campaign: CampaignDep) -> Response:
    return _xlsx(results_workbook(session, campaign), f"{campaign.slug}-results.xlsx")


@router.get("/committee/nominations/{nomination_id}/print")
def print_form(nomination_id: NominationId, request: Request, user: CurrentUser, session: SessionDep,
               campaign: CampaignDep, spec: SpecDep) -> Response:
    n = nominations.get_in_campaign(session, campaign.id or 0, nomination_id)
    return render(request, "print.html", {"n": n, "unit": campaigns.find_unit(session, n.unit_id),
                                          "campaign": campaign, "photo": attachments.photo_of(session, n)})


# --- iCalendar ----------------------------------------------------------------------------------


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace(
        "\n", "\\n")


def _fold(line: str) -> str:
    """Lines longer than 75 octets are folded (RFC 5545 3.1), never inside a UTF-8 character."""
    out: list[str] = []
    current = b""
    for ch in line:
        encoded = ch.encode("utf-8")
        limit = 75 if not out else 74
        if len(current) + len(encoded) > limit:
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_ics(session: Session, campaign: Campaign, spec: CampaignSpec) -> str:
    stamp = _utc(clock.now())
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//jingong//campaign calendar//ZH", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{_ics_text(campaign.name)}", f"X-WR-TIMEZONE:{spec.timezone}"]
    descriptions = {s.name.value: s.description for s in spec.stages}
    for stage in campaigns.list_stages(session, campaign.id or 0):
        lines += [
            "BEGIN:VEVENT",
            f"UID:{campaign.slug}-{stage.name}@jingong",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{_utc(stage.opens_at)}",
            f"DTEND:{_utc(stage.closes_at)}",
            f"SUMMARY:{_ics_text(f'{campaign.award_name}评选：{stage.title}')}",
            f"DESCRIPTION:{_ics_text(descriptions.get(stage.name, ''))}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


@router.get("/calendar.ics")
def ics(session: SessionDep, campaign: CampaignDep, spec: SpecDep) -> Response:
    return Response(calendar_ics(session, campaign, spec), media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{campaign.slug}.ics"'})
