"""Exports: the candidate list, the results and the audit trail to Excel (columns of forms
附件1/附件2), a printable nomination form, and the campaign calendar as iCalendar."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlmodel import Session

from accounts.models import User
from campaigns import service as campaigns
from campaigns.models import Campaign, NominatingUnit
from config.campaign import CampaignSpec
from core import clock
from core.beijing import BEIJING
from nominations import attachments, scores
from nominations import service as nominations
from nominations.models import Nomination
from nominations.states import STATE_LABELS_ZH, State
from voting import tally
from web import office
from web.deps import CampaignDep, CurrentUser, SessionDep, SpecDep, require
from web.schemas import NominationId
from web.templating import KIND_LABELS_ZH, TRACK_LABELS_ZH, bjt, render
from workflow import queries, trail
from workflow.machine import EVENT_LABELS_ZH, Event

router = APIRouter(include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

CANDIDATE_COLUMNS: list[tuple[str, str]] = [
    ("id", "申报编号"), ("kind", "申报方式"), ("unit", "推荐单位"), ("name", "姓名"), ("sex", "性别"),
    ("ethnicity", "民族"), ("birth_date", "出生日期"), ("education", "文化程度"), ("political_status", "政治面貌"),
    ("employer", "单位"), ("position", "职务"), ("technical_grade", "技术等级（职称）"), ("years_of_service", "工龄"),
    ("phone", "联系电话"), ("honours", "已获荣誉"), ("achievements", "主要技术成果"), ("deeds", "主要事迹"),
    ("priority_conditions", "优先推荐条件"), ("state", "状态"), ("paper_copies_received", "纸质材料（份）"),
    ("submitted_at", "提交时间（北京时间）"),
]
RESULT_STATES = (State.VETTED, State.ON_HOLD, State.PUBLICIZED, State.COMMENDED)


def safe_cell(value: Any) -> Any:
    """Text a user typed never becomes a formula in the sheet."""
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


@dataclass(frozen=True)
class Col:
    """One column of a sheet: its header, width in characters (None: from the content), whether
    long text wraps, and the number format of date cells."""

    header: str
    width: float | None = None
    wrap: bool = False


LONG = 50  # the width of a wrapped long-text column (deeds, achievements...)
DATE_FORMAT, DATETIME_FORMAT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm"


def _text_width(value: Any) -> int:
    """Characters as Excel measures them: a Chinese character is two."""
    text = str(value) if value is not None else ""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _cell_value(value: Any) -> Any:
    """Instants become Beijing wall-clock datetimes (Excel has no time zones), text is made safe."""
    if isinstance(value, datetime):
        return value.astimezone(BEIJING).replace(tzinfo=None, microsecond=0)
    return safe_cell(value)


def sheet(ws: Worksheet, name: str, title: str, columns: list[Col], rows: list[list[Any]]) -> None:
    """A sheet a clerk can use: a title row, a frozen header with an autofilter, widths that fit,
    wrapped long text, real date cells, A4 landscape fit to the page width with the header on
    every printed page."""
    ws.title = name
    last = get_column_letter(len(columns))
    ws.append([title])
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 28
    ws.append([c.header for c in columns])
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="F2E6E6")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for row in rows:
        ws.append([_cell_value(v) for v in row])
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        values = [r[index - 1] for r in rows]
        if column.width is not None:
            width = column.width
        elif any(isinstance(v, datetime) for v in values):
            width = 17
        elif any(isinstance(v, date) for v in values):
            width = 12
        else:
            width = min(40, max([_text_width(column.header), *(_text_width(v) for v in values[:500])]) + 2)
        ws.column_dimensions[letter].width = max(6, width)
        for cell in ws.iter_rows(min_row=3, min_col=index, max_col=index):
            c = cell[0]
            if isinstance(c.value, datetime):
                c.number_format = DATETIME_FORMAT
            elif isinstance(c.value, date):
                c.number_format = DATE_FORMAT
            c.alignment = Alignment(vertical="top", wrap_text=column.wrap or width >= 40)
    ws.freeze_panes = "A3"
    ws.auto_filter.ref = f"A2:{last}{max(2, len(rows) + 2)}"
    ws.print_title_rows = "2:2"
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


LONG_FIELDS = {"honours", "achievements", "deeds"}


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
    return str(value) if field == "sex" else value


def candidates_workbook(session: Session, campaign: Campaign, states: list[State] | None) -> bytes:
    units = {u.id or 0: u for u in campaigns.list_units(session, campaign.id or 0)}
    rows = nominations.list_nominations(session, campaign.id or 0, states=states)
    rows = [n for n in rows if n.state != State.DRAFT] if states is None else rows
    wb = Workbook()
    columns = [Col("序号", 6), *[Col(label, LONG if field in LONG_FIELDS else None, field in LONG_FIELDS)
                                for field, label in CANDIDATE_COLUMNS]]
    sheet(wb.active, "推荐人选", f"{campaign.name}推荐人选（导出于北京时间{bjt(clock.now())}）", columns,
          [[i, *[_value(n, f, units) for f, _ in CANDIDATE_COLUMNS]] for i, n in enumerate(rows, start=1)])
    usage = nominations.unit_usage(session, campaign.id or 0)
    plan = [[u.category, u.name, u.quota, usage.get(u.id or 0, 0),
             "是" if usage.get(u.id or 0, 0) > u.quota else ""] for u in units.values()]
    sheet(wb.create_sheet(), "推荐计划表", f"{campaign.name}推荐计划表（附件1）",
          [Col("类别"), Col("单位"), Col("推荐名额（名）", 10), Col("已推荐（名）", 10), Col("超出名额", 8)], plan)
    return _save(wb)


def review_notes(session: Session, nomination_id: int) -> str:
    """The reasons written with the candidate's decisions, oldest first, one line each."""
    return "\n".join(f"{bjt(r.received_at or r.at)} {EVENT_LABELS_ZH.get(Event(r.event), r.event)}：{r.reason}"
                     for r in queries.history(session, nomination_id) if r.reason)


def results_workbook(session: Session, campaign: Campaign, user: User) -> bytes:
    """The results sheet; a reviewer sees the scores of only the candidates they have scored themselves."""
    units = {u.id or 0: u for u in campaigns.list_units(session, campaign.id or 0)}
    rows = nominations.list_nominations(session, campaign.id or 0, states=RESULT_STATES)
    rows.sort(key=lambda n: (n.track != "main", n.id))
    columns = [Col("序号", 6), Col("奖项"), Col("姓名"), Col("性别", 6), Col("民族", 8), Col("单位"), Col("职务"),
               Col("技术等级（职称）"), Col("推荐单位"), Col("状态"), Col("网络投票得票数", 10),
               Col("综合评审得分（均分）", 12), Col("评分标准差", 10), Col("评分人数", 8),
               Col("评审意见", LONG, wrap=True)]
    visible = [n.id or 0 for n in rows if scores.may_see(session, user, n.id or 0)]
    summaries = scores.summaries(session, visible, campaigns.spec_of(campaign))
    data = []
    for i, n in enumerate(rows, start=1):
        total = summaries[n.id or 0].total if (n.id or 0) in summaries else None
        data.append([i, TRACK_LABELS_ZH.get(n.track or "", ""), n.name or "", str(n.sex or ""), n.ethnicity or "",
                     n.employer or "", n.position or "", n.technical_grade or "", _value(n, "unit", units),
                     STATE_LABELS_ZH[State(n.state)], tally.tally_of(session, campaign, n),
                     round(total.mean, 2) if total else None, round(total.sd, 2) if total else None,
                     total.count if total else 0, review_notes(session, n.id or 0)])
    wb = Workbook()
    sheet(wb.active, "评选结果", f"{campaign.name}评选结果（导出于北京时间{bjt(clock.now())}）", columns, data)
    return _save(wb)


def audit_workbook(session: Session, campaign: Campaign, f: trail.TrailFilter) -> bytes:
    rows, _ = trail.search(session, campaign.id or 0, f, limit=trail.EXPORT_LIMIT)
    columns = [Col("时间（北京时间）"), Col("事项"), Col("申报编号", 9), Col("候选人"), Col("变更 / 对象"),
               Col("操作人"), Col("操作人（系统记录）"), Col("理由", LONG, wrap=True)]
    wb = Workbook()
    sheet(wb.active, "操作记录", f"{campaign.name}操作记录（导出于北京时间{bjt(clock.now())}）", columns,
          [[r.at, r.what_zh, r.nomination_id or "", r.candidate, r.change_zh, r.actor_zh, r.actor, r.reason]
           for r in rows])
    return _save(wb)


def _save(wb: Workbook) -> bytes:
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
def export_results(session: SessionDep, campaign: CampaignDep, user: CurrentUser) -> Response:
    return _xlsx(results_workbook(session, campaign, user), f"{campaign.slug}-results.xlsx")


@router.get("/committee/exports/audit.xlsx", dependencies=[Depends(require("exports"))])
def export_audit(request: Request, session: SessionDep, campaign: CampaignDep) -> Response:
    """The audit trail as the audit page filters it (every row, not one page)."""
    return _xlsx(audit_workbook(session, campaign, office.trail_filter(request.query_params)),
                 f"{campaign.slug}-audit.xlsx")


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
