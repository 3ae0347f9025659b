"""The formal documents: the 公示 (wording, 姓氏笔画 order, 公示期满) and the commendation decision."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from docx import Document

from campaigns import decisions
from config.campaign import Track
from core.actor import Actor
from core.clock import ManualClock
from core.errors import InvalidTransition, ValidationFailed
from documents import notices
from nominations.states import State
from objections import service as objections
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination

OFFICE = Actor.system("office-test")
# 丁 2 strokes, 马 3, 王 4, 刘 6, 李 7; in code points 丁 < 刘 < 李 < 王 < 马
MAIN = ["王小明", "李四", "丁一", "马力", "刘德"]
MAIN_BY_STROKES = ["丁一", "马力", "王小明", "刘德", "李四"]
FINALISTS = ["張三", "于伟", "白云"]  # 于 3, 白 5, 張 11
FINALISTS_BY_STROKES = ["于伟", "白云", "張三"]


def formal_candidates(engine: Any, campaign: Any, spec: Any, state: State = State.VETTED) -> None:
    with unit_of_work(engine) as session:
        for name in MAIN:
            create_nomination(session, campaign, spec, state, name=name, employer=f"{name}的单位")
        for name in FINALISTS:
            create_nomination(session, campaign, spec, state, track=Track.FINALIST, name=name)


def test_the_notice_lists_names_in_stroke_order_per_award(engine: Any, campaign: Any, spec: Any,
                                                          clock: ManualClock) -> None:
    formal_candidates(engine, campaign, spec)
    assert sorted(MAIN) != MAIN_BY_STROKES  # code-point order would be wrong
    with unit_of_work(engine, readonly=True) as session:
        assert notices.notice(session, campaign).groups == []  # not before the notice opens
        clock.set(beijing(2021, 8, 2, 9, 0))
        doc = notices.notice(session, campaign)
    assert [g.track for g in doc.groups] == [Track.MAIN, Track.FINALIST]
    assert [p.name for p in doc.groups[0].people] == MAIN_BY_STROKES
    assert [p.name for p in doc.groups[1].people] == FINALISTS_BY_STROKES
    assert doc.period == "2021年8月1日至2021年8月31日" and doc.issued_on == date(2021, 8, 1)
    assert doc.expiry is None and doc.count == 8


def test_the_notice_wording_comes_from_the_campaign_file(engine: Any, campaign: Any, spec: Any,
                                                         clock: ManualClock) -> None:
    formal_candidates(engine, campaign, spec)
    clock.set(beijing(2021, 8, 2, 9, 0))
    with unit_of_work(engine, readonly=True) as session:
        html = str(notices.notice_fragment(notices.notice(session, campaign)))
    assert "江津区第三届“津工精匠”正式候选人公示" in html
    assert "根据《关于开展第三届“津工精匠”评选活动的通知》（津人社发〔2021〕36号）要求" in html
    assert "“津工精匠”正式候选人5名、“津工精匠入围奖”正式候选人3名" in html
    assert "公示期：</strong>2021年8月1日至2021年8月31日" in html
    assert "书面反映" in html and "电话反映" in html and "真实姓名" in html
    assert "王林 47535232" in html and "杨文化 81220561" in html and "临江路244号" in html
    signed = [html.index(text) for text in ("重庆市江津区人力资源和社会保障局", "重庆市江津区总工会",
                                            "2021年8月1日</p>")]
    assert signed == sorted(signed)
    positions = [html.index(f">{name}<") for name in MAIN_BY_STROKES]
    assert positions == sorted(positions)


def test_the_notice_states_its_expiry_with_the_objections(engine: Any, campaign: Any, spec: Any,
                                                          clock: ManualClock) -> None:
    formal_candidates(engine, campaign, spec)
    clock.set(beijing(2021, 8, 10, 9, 0))
    with unit_of_work(engine) as session:
        target = notices.notice(session, campaign).groups[0].people[0]
        objections.lodge(session, campaign, target.id, name="群众甲", contact="13800000000", facts="材料不实")
        assert notices.notice(session, campaign).expiry is None
    clock.set(beijing(2021, 9, 1, 0, 0))  # the window closes at midnight: the last day is 31 August
    with unit_of_work(engine, readonly=True) as session:
        doc = notices.notice(session, campaign)
    assert doc.expiry == notices.Expiry(on=date(2021, 8, 31), objections=1, pending=1)
    html = str(notices.notice_fragment(doc))
    assert "公示期满" in html and "本次公示已于2021年8月31日期满" in html
    assert "共受理异议1件，其中1件正在核查处理" in html


def test_the_notice_without_objections_says_so(engine: Any, campaign: Any, spec: Any, clock: ManualClock) -> None:
    formal_candidates(engine, campaign, spec)
    clock.set(beijing(2021, 9, 5, 9, 0))
    with unit_of_work(engine, readonly=True) as session:
        html = str(notices.notice_fragment(notices.notice(session, campaign)))
    assert "公示期间，评选组委会办公室未收到异议" in html


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) is not installed")
def test_the_notice_pdf_carries_the_wording_and_the_order(engine: Any, campaign: Any, spec: Any,
                                                          clock: ManualClock, tmp_path: Path) -> None:
    formal_candidates(engine, campaign, spec)
    clock.set(beijing(2021, 8, 2, 9, 0))
    with unit_of_work(engine, readonly=True) as session:
        pdf = notices.notice_pdf(notices.notice(session, campaign))
    text = _pdf_text(pdf, tmp_path)
    assert "正式候选人公示" in text and "津人社发〔2021〕36号" in text and "47535232" in text
    positions = [text.index(name) for name in MAIN_BY_STROKES]
    assert positions == sorted(positions)


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    assert pdf.startswith(b"%PDF")
    (tmp_path / "doc.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(tmp_path / "doc.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text.replace("\n", "")  # lines break anywhere in Chinese


def test_the_decision_is_entered_then_published_and_then_final(engine: Any, campaign: Any, spec: Any,
                                                               clock: ManualClock) -> None:
    formal_candidates(engine, campaign, spec, State.PUBLICIZED)
    cid = campaign.id
    clock.set(beijing(2021, 8, 20, 9, 0))
    with unit_of_work(engine) as session:
        with pytest.raises(ValidationFailed):  # dated before the notice ends
            decisions.enter_decision(session, cid, number="津人社发〔2021〕88号", decided_on=date(2021, 8, 20),
                                     actor=OFFICE)
        decisions.enter_decision(session, cid, number="津人社发〔2021〕88号", decided_on=date(2021, 10, 20),
                                 actor=OFFICE)
        with pytest.raises(InvalidTransition):  # the notice is still running
            decisions.publish_decision(session, cid, actor=OFFICE)
    clock.set(beijing(2021, 10, 20, 9, 0))
    with unit_of_work(engine) as session:
        decisions.enter_decision(session, cid, number="津人社发〔2021〕89号", decided_on=date(2021, 10, 20),
                                 actor=OFFICE)  # a correction, before publication
        assert decisions.published_decision(session, cid) is None
        first = decisions.publish_decision(session, cid, actor=OFFICE).published_at
    clock.set(beijing(2021, 10, 21, 9, 0))
    with unit_of_work(engine) as session:
        assert decisions.publish_decision(session, cid, actor=OFFICE).published_at == first  # no-op
        with pytest.raises(InvalidTransition):
            decisions.enter_decision(session, cid, number="改", decided_on=date(2021, 10, 21), actor=OFFICE)
        from audit import service as audit

        acts = [e.action for e in audit.list_events(session, campaign_id=cid) if e.subject == "commendation"]
    assert acts == ["decision_published", "decision_entered", "decision_entered"]


def test_the_decision_as_word_and_pdf(engine: Any, campaign: Any, spec: Any, clock: ManualClock,
                                      tmp_path: Path) -> None:
    formal_candidates(engine, campaign, spec, State.PUBLICIZED)
    clock.set(beijing(2021, 10, 20, 9, 0))
    with unit_of_work(engine) as session:
        decisions.enter_decision(session, campaign.id, number="津人社发〔2021〕88号", decided_on=date(2021, 10, 20),
                                 actor=OFFICE)
        doc = notices.decision(session, campaign)
    assert doc is not None and not doc.published
    word = Document(io.BytesIO(notices.decision_docx(doc)))
    text = "\n".join(p.text for p in word.paragraphs)
    assert "津人社发〔2021〕88号" in text and "关于命名表彰江津区第三届“津工精匠”的决定" in text
    assert "命名丁一等5名同志为江津区第三届“津工精匠”" in text
    assert "授予于伟等3名同志江津区第三届“津工精匠入围奖”" in text
    assert "（津人社发〔2021〕36号）" in text and "报区政府审定" in text
    assert text.index("重庆市江津区总工会") < text.index("2021年10月20日")
    main, finalists = word.tables
    assert [row.cells[1].text for row in main.rows[1:]] == MAIN_BY_STROKES
    assert [row.cells[1].text for row in finalists.rows[1:]] == FINALISTS_BY_STROKES
    if shutil.which("pdftotext"):
        pdf_text = _pdf_text(notices.decision_pdf(doc), tmp_path)
        assert "津人社发〔2021〕88号" in pdf_text and "命名丁一等5名同志" in pdf_text
