"""Exports: Excel lists in the forms' columns, the printable form, the calendar file."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from accounts.models import Role
from config.campaign import Track
from core.actor import Actor
from nominations.models import Nomination
from nominations.states import State
from storage.db import unit_of_work
from tests.factories import create_nomination


@pytest.fixture
def engine(sqlite_engine: Any) -> Any:
    return sqlite_engine


def test_candidates_excel(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    with unit_of_work(engine) as session:
        create_nomination(session, campaign, spec, State.SUBMITTED, name="甲", honours="=HYPERLINK(\"x\")")
        create_nomination(session, campaign, spec, State.DRAFT, name="草稿")
    member, _ = as_member("rev", Role.REVIEWER)
    response = member.get("/committee/exports/candidates.xlsx")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/vnd.openxml")
    wb = load_workbook(io.BytesIO(response.content))
    sheet = wb["推荐人选"]
    header = [c.value for c in sheet[2]]
    assert header[:6] == ["序号", "申报编号", "申报方式", "推荐单位", "姓名", "性别"]
    assert "技术等级（职称）" in header and "主要事迹" in header and "联系电话" in header
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert [r[header.index("姓名")] for r in rows] == ["甲"]  # drafts are not candidates
    honours = rows[0][header.index("已获荣誉")]
    assert isinstance(honours, str) and honours.startswith("'=")  # never a formula
    plan = wb["推荐计划表"]
    assert [c.value for c in plan[2]][:3] == ["类别", "单位", "推荐名额（名）"]
    assert plan.max_row == len(spec.units) + 2


def test_results_excel(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    with unit_of_work(engine) as session:
        create_nomination(session, campaign, spec, State.PUBLICIZED, track=Track.FINALIST, name="入围")
        create_nomination(session, campaign, spec, State.PUBLICIZED, track=Track.MAIN, name="精匠")
        create_nomination(session, campaign, spec, State.REJECTED, name="落选")
    member, _ = as_member("office")
    wb = load_workbook(io.BytesIO(member.get("/committee/exports/results.xlsx").content))
    rows = list(wb.active.iter_rows(min_row=3, values_only=True))
    assert [(r[1], r[2]) for r in rows] == [("津工精匠", "精匠"), ("津工精匠入围奖", "入围")]


def test_candidates_sheet_is_usable_by_a_clerk(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    deeds = "扎根一线三十年，" * 60  # about 500 characters
    with unit_of_work(engine) as session:
        create_nomination(session, campaign, spec, State.SUBMITTED, name="甲", deeds=deeds)
        create_nomination(session, campaign, spec, State.SCREENED, name="乙")
    member, _ = as_member("office")
    ws = load_workbook(io.BytesIO(member.get("/committee/exports/candidates.xlsx").content))["推荐人选"]
    header = [c.value for c in ws[2]]
    last = ws.cell(row=2, column=len(header)).column_letter
    assert "推荐人选" in ws["A1"].value and f"A1:{last}1" in {str(r) for r in ws.merged_cells.ranges}
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == f"A2:{last}4"
    assert ws.print_title_rows == "$2:$2"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    assert ws.page_setup.fitToHeight == 0
    deeds_col = ws.cell(row=2, column=header.index("主要事迹") + 1)
    deeds_cell = ws.cell(row=3, column=deeds_col.column)
    assert deeds_cell.value == deeds and deeds_cell.alignment.wrap_text
    assert ws.column_dimensions[deeds_col.column_letter].width == 50
    name_width = ws.column_dimensions[ws.cell(row=2, column=header.index("姓名") + 1).column_letter].width
    assert name_width < 20  # widths follow the content, not one fixed width
    birth = ws.cell(row=3, column=header.index("出生日期") + 1)
    assert isinstance(birth.value, datetime) and birth.number_format == "yyyy-mm-dd"  # a real date
    submitted = ws.cell(row=3, column=header.index("提交时间（北京时间）") + 1)
    assert isinstance(submitted.value, datetime) and submitted.number_format == "yyyy-mm-dd hh:mm"
    assert submitted.value.tzinfo is None  # Excel has no zones: Beijing wall-clock time


def test_results_sheet_has_vote_counts_and_review_notes(as_member: Any, engine: Any, campaign: Any,
                                                         spec: Any) -> None:
    from workflow import service as workflow
    from workflow.machine import Event

    with unit_of_work(engine) as session:
        n = create_nomination(session, campaign, spec, State.ON_HOLD, name="精匠")
        workflow.transition(session, n.id or 0, Event.DISMISS_OBJECTION, actor=Actor.system("test-office"),
                            reason="经核查，异议不成立")
    member, _ = as_member("office")
    ws = load_workbook(io.BytesIO(member.get("/committee/exports/results.xlsx").content)).active
    header = [c.value for c in ws[2]]
    assert "网络投票得票数" in header and "评审意见" in header and "综合评审得分" not in header
    row = next(ws.iter_rows(min_row=3, values_only=True))
    assert row[header.index("姓名")] == "精匠" and row[header.index("网络投票得票数")] == 0
    notes = row[header.index("评审意见")]
    assert "异议不成立：经核查，异议不成立" in notes and "test reason" in notes  # every decision's reason


def test_results_sheet_carries_the_reviewers_scores(as_member: Any, make_user: Any, engine: Any, campaign: Any,
                                                     spec: Any, clock: Any) -> None:
    from nominations import scores
    from tests.conftest import beijing

    with unit_of_work(engine) as session:
        n = create_nomination(session, campaign, spec, State.VETTED, name="精匠")
        create_nomination(session, campaign, spec, State.VETTED, name="未评")
    criteria = scores.criteria_of(spec)
    clock.set(beijing(2021, 7, 22, 9, 0))  # scored while the review is open
    for username, share in (("expert1", 1.0), ("expert2", 0.5)):
        reviewer = make_user(username, Role.REVIEWER)
        with unit_of_work(engine) as session:
            scores.submit(session, reviewer, session.get(Nomination, n.id), spec,
                          {c.code: int(c.max_points * share) for c in criteria})
    member, _ = as_member("office")
    ws = load_workbook(io.BytesIO(member.get("/committee/exports/results.xlsx").content)).active
    header = [c.value for c in ws[2]]
    rows = {r[header.index("姓名")]: r for r in ws.iter_rows(min_row=3, values_only=True)}
    with unit_of_work(engine, readonly=True) as session:
        expected = scores.summaries(session, [n.id], spec)[n.id].total
    assert expected is not None and expected.count == 2 and expected.sd > 0
    row = rows["精匠"]
    assert row[header.index("综合评审得分（均分）")] == round(expected.mean, 2)
    assert row[header.index("评分标准差")] == round(expected.sd, 2) and row[header.index("评分人数")] == 2
    assert rows["未评"][header.index("评分人数")] == 0
    assert rows["未评"][header.index("综合评审得分（均分）")] is None
    # a reviewer who has not scored 精匠 yet does not see the others' scores in the export either
    other, _ = as_member("expert3", Role.REVIEWER)
    ws = load_workbook(io.BytesIO(other.get("/committee/exports/results.xlsx").content)).active
    blind = {r[header.index("姓名")]: r for r in ws.iter_rows(min_row=3, values_only=True)}["精匠"]
    assert blind[header.index("评分人数")] == 0 and blind[header.index("综合评审得分（均分）")] is None


def test_calendar_ics(client: TestClient) -> None:
    response = client.get("/calendar.ics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    text = response.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert text.count("BEGIN:VEVENT") == 8
    # 2021-05-31 18:00 Beijing is 10:00 UTC
    assert "DTEND:20210531T100000Z" in text
    unfolded = text.replace("\r\n ", "")
    assert "推荐申报截止时间为2021年5月31日18:00时。" in unfolded
    for line in text.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
