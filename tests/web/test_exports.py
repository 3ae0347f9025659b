"""Exports: Excel lists in the forms' columns, the printable form, the calendar file."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from accounts.models import Role
from config.campaign import Track
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
    header = [c.value for c in sheet[1]]
    assert header[:6] == ["序号", "申报编号", "申报方式", "推荐单位", "姓名", "性别"]
    assert "技术等级（职称）" in header and "主要事迹" in header and "联系电话" in header
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[header.index("姓名")] for r in rows] == ["甲"]  # drafts are not candidates
    honours = rows[0][header.index("已获荣誉")]
    assert isinstance(honours, str) and honours.startswith("'=")  # never a formula
    plan = wb["推荐计划表"]
    assert [c.value for c in plan[1]][:3] == ["类别", "单位", "推荐名额（名）"]
    assert plan.max_row == len(spec.units) + 1


def test_results_excel(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    with unit_of_work(engine) as session:
        create_nomination(session, campaign, spec, State.PUBLICIZED, track=Track.FINALIST, name="入围")
        create_nomination(session, campaign, spec, State.PUBLICIZED, track=Track.MAIN, name="精匠")
        create_nomination(session, campaign, spec, State.REJECTED, name="落选")
    member, _ = as_member("office")
    wb = load_workbook(io.BytesIO(member.get("/committee/exports/results.xlsx").content))
    rows = list(wb.active.iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[2]) for r in rows] == [("津工精匠", "精匠"), ("津工精匠入围奖", "入围")]


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
