"""The forms as Word documents (python-docx): A4, the notice's table with merged cells, the photo
in its box, 宋体/仿宋 with the East-Asian font set so Word on an office PC shows them as intended."""

from __future__ import annotations

import io

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from documents.forms import Plan, Sheet

SONG = "宋体"  # SimSun: labels and titles
FANG = "仿宋"  # FangSong: what is filled in
HEI = "黑体"  # SimHei: 附件N
#: widths of the form's seven columns (label, value, label, value, label, value, photo): 166 mm
FORM_COLUMNS_MM = (23, 23, 20, 23, 20, 27, 30)
PLAN_COLUMNS_MM = (43, 76, 47)


def _font(run_or_style: object, family: str, size: float, *, bold: bool = False) -> None:
    font = run_or_style.font  # type: ignore[attr-defined]
    font.name = family
    font.size = Pt(size)
    font.bold = bold
    element = run_or_style.element  # type: ignore[attr-defined]
    element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), family)


def _document() -> object:
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(20), Mm(15)
    section.left_margin, section.right_margin = Mm(22), Mm(22)
    normal = doc.styles["Normal"]
    _font(normal, SONG, 11)
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.space_before = Pt(0)
    return doc


def _para(container: object, text: str, family: str, size: float, *, bold: bool = False,
          align: WD_ALIGN_PARAGRAPH | None = None, space_after: float = 0) -> Paragraph:
    paragraph: Paragraph = container.add_paragraph()  # type: ignore[attr-defined]
    if align is not None:
        paragraph.alignment = align
    paragraph.paragraph_format.space_after = Pt(space_after)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        run = paragraph.add_run(line)
        _font(run, family, size, bold=bold)
        if i < len(lines) - 1:
            run.add_break()
    return paragraph


def _set(cell: _Cell, text: str, *, family: str = SONG, size: float = 11,
         align: WD_ALIGN_PARAGRAPH = WD_ALIGN_PARAGRAPH.CENTER,
         valign: WD_CELL_VERTICAL_ALIGNMENT = WD_CELL_VERTICAL_ALIGNMENT.CENTER) -> Paragraph:
    """Write ``text`` into a cell's first paragraph (line breaks kept)."""
    cell.vertical_alignment = valign
    paragraph = cell.paragraphs[0]
    paragraph.alignment = align
    lines = text.split("\n")
    for i, line in enumerate(lines):
        run = paragraph.add_run(line)
        _font(run, family, size)
        if i < len(lines) - 1:
            run.add_break()
    return paragraph


def _widths(table: Table, widths_mm: tuple[int, ...]) -> None:
    table.autofit = False
    for row in table.rows:
        for cell, width in zip(row.cells, widths_mm, strict=False):
            cell.width = Mm(width)


def _height(table: Table, row: int, mm: float) -> None:
    table.rows[row].height = Mm(mm)
    table.rows[row].height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST


def _save(doc: object) -> bytes:
    out = io.BytesIO()
    doc.save(out)  # type: ignore[attr-defined]
    return out.getvalue()


def _heading(doc: object, annex: str, title: str, subtitle: str = "") -> None:
    _para(doc, annex, HEI, 14, space_after=6)
    _para(doc, title, SONG, 18, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=4)
    if subtitle:
        _para(doc, subtitle, SONG, 12, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=6)


def _sign_box(cell: _Cell, opinion: str, mark: str, day: str) -> None:
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.TOP
    _set(cell, opinion, family=FANG, size=11, align=WD_ALIGN_PARAGRAPH.LEFT, valign=WD_CELL_VERTICAL_ALIGNMENT.TOP)
    mark_p = _para(cell, mark, SONG, 11, align=WD_ALIGN_PARAGRAPH.RIGHT)
    mark_p.paragraph_format.space_before = Pt(14)
    mark_p.paragraph_format.right_indent = Mm(22)
    day_p = _para(cell, day, SONG, 11, align=WD_ALIGN_PARAGRAPH.RIGHT)
    day_p.paragraph_format.right_indent = Mm(6)


def sheet_docx(sheet: Sheet) -> bytes:
    """附件2/附件3 as Word: the table of the notice, filled or blank."""
    doc = _document()
    _heading(doc, f"附件{sheet.attachment}", sheet.title, sheet.subtitle)
    if sheet.reference:
        _para(doc, sheet.reference, SONG, 9, align=WD_ALIGN_PARAGRAPH.RIGHT)
    table: Table = doc.add_table(rows=9, cols=7)  # type: ignore[attr-defined]
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _widths(table, FORM_COLUMNS_MM)
    g = sheet.grid
    # the four rows beside the photo
    for r in (0, 1, 3):
        for i, cell in enumerate(g[r]):
            _set(table.cell(r, 2 * i), cell.label)
            _set(table.cell(r, 2 * i + 1), cell.value, family=FANG)
        _height(table, r, 10)
    _set(table.cell(2, 0), g[2][0].label)
    _set(table.cell(2, 1).merge(table.cell(2, 3)), g[2][0].value, family=FANG)
    _set(table.cell(2, 4), g[2][1].label)
    _set(table.cell(2, 5), g[2][1].value, family=FANG)
    _height(table, 2, 10)
    photo = table.cell(0, 6).merge(table.cell(3, 6))
    if sheet.photo:
        photo.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
        paragraph = photo.paragraphs[0]
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.add_run().add_picture(io.BytesIO(sheet.photo), width=Mm(25))
    else:
        _set(photo, "一寸近\n期免冠\n照片")
    # the long answers
    for row, label, text in ((4, "已获荣誉", sheet.honours), (5, "主要技术\n成果", sheet.achievements)):
        _set(table.cell(row, 0), label)
        _set(table.cell(row, 1).merge(table.cell(row, 6)), text, family=FANG, align=WD_ALIGN_PARAGRAPH.LEFT,
             valign=WD_CELL_VERTICAL_ALIGNMENT.TOP)
        _height(table, row, 18 if sheet.blank else 14)
    deeds = table.cell(6, 0).merge(table.cell(6, 6))
    _set(deeds, sheet.deeds_label, valign=WD_CELL_VERTICAL_ALIGNMENT.TOP)
    if sheet.deeds:
        _para(deeds, sheet.deeds, FANG, 11, align=WD_ALIGN_PARAGRAPH.JUSTIFY).paragraph_format.first_line_indent = \
            Pt(22)
    _height(table, 6, 60)
    # the signature and the seals
    _set(table.cell(7, 0), sheet.opinion_label)
    _sign_box(table.cell(7, 1).merge(table.cell(7, 6)), sheet.opinion, sheet.opinion_mark, sheet.opinion_date)
    _set(table.cell(8, 0), "组委会意见")
    _sign_box(table.cell(8, 1).merge(table.cell(8, 6)), sheet.committee_opinion, "（盖章）", sheet.committee_date)
    _height(table, 7, 27)
    _height(table, 8, 27)
    _para(doc, sheet.note, SONG, 10.5).paragraph_format.space_before = Pt(4)
    return _save(doc)


def plan_docx(plan: Plan) -> bytes:
    """附件1 as Word: category, unit, quota; each category one merged cell."""
    doc = _document()
    _heading(doc, "附件1", plan.title)
    table: Table = doc.add_table(rows=len(plan.rows) + 1, cols=3)  # type: ignore[attr-defined]
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _widths(table, PLAN_COLUMNS_MM)
    for i, label in enumerate(("类别", "单位", "推荐名额（名）")):
        _set(table.cell(0, i), label).runs[0].font.bold = True
    _height(table, 0, 9)
    for r, row in enumerate(plan.rows, start=1):
        if row.span:
            cell = table.cell(r, 0) if row.span == 1 else table.cell(r, 0).merge(table.cell(r + row.span - 1, 0))
            _set(cell, row.category)
        _set(table.cell(r, 1), row.unit)
        _set(table.cell(r, 2), str(row.quota))
        _height(table, r, 6.5)
    _para(doc, plan.note, SONG, 10.5).paragraph_format.space_before = Pt(4)
    return _save(doc)
