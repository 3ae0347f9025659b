"""The forms on paper: a nomination's 推荐表/自荐表 and the blank 附件1–3 as Word and PDF, the notice."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.oxml.ns import qn
from PIL import Image

from config.campaign import CampaignSpec
from config.settings import Settings
from core.errors import NotFound
from documents import forms, notice
from nominations import attachments
from nominations import service as nominations
from nominations.models import AttachmentKind, NominationKind
from storage.db import unit_of_work
from tests.factories import create_draft

needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="pdftotext/pdftoppm (poppler-utils) are not installed")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"JINGONG_DATA_DIR": str(tmp_path / "data"),
                                    "SECRET_KEY": "test-secret-key-" + "x" * 40})


@pytest.fixture
def output(tmp_path: Path) -> Path:
    """Where the rendered pages go (the browser tests' screenshot folder)."""
    folder = Path(os.environ.get("JINGONG_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (250, 350), (30, 90, 200)).save(path, "JPEG")
    return path


def _with_photo(session: Any, n: Any, tmp_path: Path, settings: Settings) -> None:
    upload = attachments.Upload(filename="照片.jpg", path=_photo(tmp_path), size=_photo(tmp_path).stat().st_size)
    attachments.judge(upload, AttachmentKind.PHOTO, photo_max_bytes=settings.photo_max_bytes)
    attachments.store(session, n.token, AttachmentKind.PHOTO, upload, settings.uploads_dir)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "form.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def pdf_pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]


def to_png(pdf: bytes, folder: Path, name: str) -> Path:
    (folder / f"{name}.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(folder / f"{name}.pdf"),
                    str(folder / name)], check=True)
    return folder / f"{name}.png"


def docx_text(content: bytes) -> tuple[Any, str]:
    document = docx.Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    seen: dict[int, Any] = {}  # keeps the elements alive, so their ids stay theirs
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:  # a merged cell is listed once per grid cell it covers
                if id(cell._tc) not in seen:
                    seen[id(cell._tc)] = cell._tc
                    parts.append(cell.text)
    return document, "\n".join(parts)


def test_unit_form_as_word_carries_the_fields_the_photo_and_the_seal_line(
        engine: Any, campaign: Any, spec: CampaignSpec, settings: Settings, tmp_path: Path) -> None:
    with unit_of_work(engine) as session:
        n = create_draft(session, campaign, spec, kind=NominationKind.UNIT, name="张三",
                         employer="重庆精工机械有限公司", phone="13912345678",
                         deeds="扎根车间二十年，带徒四十人。", unit_opinion="同意推荐")
        _with_photo(session, n, tmp_path, settings)
        content, media_type, filename = forms.render_form(session, n.id, "docx", settings)
    assert media_type == forms.DOCX and filename == "附件2-推荐表-张三.docx"
    document, text = docx_text(content)
    for expected in ("附件2", "江津区第三届“津工精匠”推荐表", "（单位推荐和社团推荐表）", "张三", "男", "汉族",
                     "1975年", "重庆精工机械有限公司", "车间主任", "高级技师", "25年", "13912345678", "重庆市技术能手",
                     "主持数控工艺改进三项", "扎根车间二十年，带徒四十人。", "同意推荐", "推荐单位\n意见", "组委会意见",
                     "2021年5月1日", "2021年　　月　　日"):
        assert expected in text, expected
    unit_name = spec.units[0].name
    assert f"{unit_name}（盖章）" in text  # the unit's seal line
    assert text.count("（盖章）") == 2  # and the committee's
    assert len(document.inline_shapes) == 1  # the photo, in its box beside the first four rows
    table = document.tables[0]
    photo_cell = table.cell(0, 6)
    assert photo_cell._tc is table.cell(3, 6)._tc and photo_cell._tc.xpath(".//pic:pic")
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)  # A4
    run = table.cell(0, 1).paragraphs[0].runs[0]
    assert run.text == "张三" and run.element.rPr.rFonts.get(qn("w:eastAsia")) == "仿宋"


@needs_poppler
def test_self_form_as_pdf_has_the_fields_and_the_signature_line_on_one_a4_page(
        engine: Any, campaign: Any, spec: CampaignSpec, settings: Settings, tmp_path: Path, output: Path) -> None:
    with unit_of_work(engine) as session:
        n = create_draft(session, campaign, spec, kind=NominationKind.SELF, name="李四", applicant_signature="李四",
                         employer="江津区某非遗工坊")
        _with_photo(session, n, tmp_path, settings)
        content, media_type, filename = forms.render_form(session, n.id, "pdf", settings)
    assert media_type == "application/pdf" and filename == "附件3-自荐表-李四.pdf" and content.startswith(b"%PDF")
    text = pdf_text(content, tmp_path)
    for expected in ("附件3", "自荐表", "（个人申报）", "李四", "江津区某非遗工坊", "13800138000", "申请人",
                     "签字：李四", "2021年5月1日", "组委会意见", "（盖章）"):
        assert expected in text, expected
    assert re.search(r"2021年\s+月\s+日", text)  # the committee's date, left for the hand
    assert pdf_pages(content, tmp_path) == 1
    fonts = subprocess.run(["pdffonts", str(tmp_path / "pages.pdf")], capture_output=True, text=True).stdout
    assert "Noto-Serif-CJK" in fonts and "Noto-Sans-CJK" in fonts  # the families the CSS names, embedded
    png = to_png(content, output, "form-self-filled")
    with Image.open(png) as page:
        assert abs(page.width / page.height - 210 / 297) < 0.01  # A4
        # the photo is on the page: a patch of its blue (the rest is black on white)
        rgb = page.convert("RGB").tobytes()
        blue = sum(1 for i in range(0, len(rgb), 3) if rgb[i + 2] > 150 and rgb[i] < 80)
        assert blue > 300


def test_a_name_cannot_make_a_path_of_the_filename(
        engine: Any, campaign: Any, spec: CampaignSpec, settings: Settings) -> None:
    with unit_of_work(engine) as session:
        n = create_draft(session, campaign, spec, name="../王\\五?")
        _, _, filename = forms.render_form(session, n.id, "docx", settings)
        unnamed = create_draft(session, campaign, spec, name=None)
        _, _, fallback = forms.render_form(session, unnamed.id, "docx", settings)
    assert filename == "附件3-自荐表-王五.docx"
    assert fallback == f"附件3-自荐表-申报{unnamed.id}.docx"


def test_an_unknown_nomination_is_not_found(engine: Any, campaign: Any, settings: Settings) -> None:
    with unit_of_work(engine) as session, pytest.raises(NotFound):
        forms.render_form(session, 999_999, "pdf", settings)


def test_blank_forms_as_word(spec: CampaignSpec) -> None:
    content, media_type, filename = forms.render_blank("recommend", "docx", spec)
    assert media_type == forms.DOCX and filename == "附件2-推荐表.docx"
    _, text = docx_text(content)
    assert "推荐单位\n意见" in text and "（盖章）" in text and "2021年　　月　　日" in text and "一寸近" in text
    _, text = docx_text(forms.render_blank("self", "docx", spec)[0])
    assert "（个人申报）" in text and "签字：" in text
    document, text = docx_text(forms.render_blank("plan", "docx", spec)[0])
    rows = document.tables[0].rows
    assert [c.text for c in rows[0].cells] == ["类别", "单位", "推荐名额（名）"]
    assert len(rows) == len(spec.units) + 1
    assert all(unit.name in text for unit in spec.units)
    # the category is one merged cell down its units, as in the notice
    assert rows[1].cells[0]._tc is rows[2].cells[0]._tc and rows[1].cells[0].text == "重点行业部门"


@needs_poppler
def test_blank_forms_as_pdf(spec: CampaignSpec, tmp_path: Path, output: Path) -> None:
    for name, expected in (("recommend", "推荐单位"), ("self", "申请人"), ("plan", "推荐名额（名）")):
        content, _, filename = forms.render_blank(name, "pdf", spec)  # type: ignore[arg-type]
        assert filename.endswith(".pdf")
        text = pdf_text(content, tmp_path)
        assert expected in text
        # the plan lists every unit on its own row (each town and street): two pages; a form is one
        assert pdf_pages(content, tmp_path) == (2 if name == "plan" else 1), name
        if name == "plan":
            assert all(unit.name in text for unit in spec.units)
        to_png(content, output, f"form-{name}-blank")
    assert "双福工业发展中心" in pdf_text(forms.render_blank("plan", "pdf", spec)[0], tmp_path)


@needs_poppler
def test_the_notice_as_pdf_with_its_attachments(spec: CampaignSpec, tmp_path: Path, output: Path) -> None:
    content, media_type, filename = notice.render_notice(spec, "pdf")
    assert media_type == "application/pdf" and filename == "津人社发〔2021〕36号-通知.pdf"
    text = pdf_text(content, tmp_path)
    assert "关于开展第三届“津工精匠”评选" in text and "推荐申报截止时间为2021年5月31日18:00时" in text
    assert "附件1" in text and "推荐计划表" in text and "（单位推荐和社团推荐表）" in text and "（个人申报）" in text
    to_png(content, output, "notice-page1")
    raw, media_type, filename = notice.render_notice(spec, "txt")
    assert media_type.startswith("text/plain") and filename.endswith(".txt")
    assert "江津区临江路244号" in raw.decode("utf-8")


def test_a_campaign_without_a_notice_file_has_none_to_give(spec: CampaignSpec) -> None:
    with pytest.raises(NotFound):
        notice.render_notice(spec.model_copy(update={"notice_file": ""}), "pdf")
    with pytest.raises(NotFound):
        notice.render_notice(spec.model_copy(update={"notice_file": "no-such-notice.txt"}), "txt")


@needs_poppler
def test_a_full_form_stays_on_one_page(engine: Any, campaign: Any, spec: CampaignSpec, settings: Settings,
                                       tmp_path: Path, output: Path) -> None:
    deeds = "扎根一线二十余年，" * (spec.rules.deeds_max_chars // 9)
    with unit_of_work(engine) as session:
        n = create_draft(session, campaign, spec, kind=NominationKind.UNIT, name="欧阳长名", deeds=deeds,
                         employer="重庆某某装备制造股份有限公司江津分公司第二数控加工车间",
                         honours="2019年重庆市技术能手；2020年巴渝工匠；江津区劳动模范；" * 2,
                         achievements="发明专利3项；实用新型专利5项；" * 4)
        content, _, _ = forms.render_form(session, n.id, "pdf", settings)
    assert pdf_pages(content, tmp_path) == 1
    assert "二十余年" in pdf_text(content, tmp_path)
    to_png(content, output, "form-unit-full")


def test_a_filled_pdf_is_laid_out_once_until_the_form_changes(engine: Any, campaign: Any, spec: CampaignSpec,
                                                              settings: Settings, monkeypatch: Any) -> None:
    laid_out: list[int] = []
    real = forms.html_to_pdf

    def counting(html: str) -> bytes:
        laid_out.append(len(html))
        return real(html)

    monkeypatch.setattr(forms, "html_to_pdf", counting)
    monkeypatch.setattr(forms, "_pdf_cache", type(forms._pdf_cache)())
    with unit_of_work(engine) as session:
        n = create_draft(session, campaign, spec, kind=NominationKind.SELF, name="王五")
        first, _, _ = forms.render_form(session, n.id, "pdf", settings)
        again, _, _ = forms.render_form(session, n.id, "pdf", settings)  # the unit, the office: the same bytes
        assert again == first and len(laid_out) == 1
        nominations.update_draft(session, n, spec, {"employer": "江津区某新工坊"})
        changed, _, _ = forms.render_form(session, n.id, "pdf", settings)
    assert len(laid_out) == 2 and changed != first  # an edit is laid out anew, never served stale
    monkeypatch.setattr(forms, "PDF_CACHE_SIZE", 1)
    with unit_of_work(engine) as session:
        other = create_draft(session, campaign, spec, kind=NominationKind.SELF, name="赵六")
        forms.render_form(session, other.id, "pdf", settings)
    assert len(forms._pdf_cache) == 1  # bounded
