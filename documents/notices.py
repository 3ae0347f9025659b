"""The formal public documents: the 公示 of the formal candidates (HTML fragment for the page, PDF
for print), its 公示期满 statement, and the commendation decision (表彰决定) as .docx and PDF.

The wording follows the campaign file: the basis is the notice (``notice_ref``), the channels and
rules for objections, the issuing bodies and the office's contacts come from ``[publicity]`` and
``[office]``. Names are listed per award in 姓氏笔画 order (ICU stroke collation).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.text.paragraph import Paragraph
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlmodel import Session

from campaigns import decisions
from campaigns import service as campaigns
from campaigns.decisions import CommendationDecision
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName, Track
from core import clock
from documents.collation import by_strokes
from documents.pdf import CJK_SANS, CJK_SERIF, html_to_pdf
from nominations import public as public_lists
from nominations.public import PublicCandidate
from objections import service as objections
from objections.models import ObjectionStatus

TEMPLATES = Path(__file__).resolve().parent / "templates" / "notices"
_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def _ymd(value: date | None) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else ""


_env.filters["ymd"] = _ymd


@dataclass(frozen=True)
class Group:
    track: Track
    label: str
    people: list[PublicCandidate]


@dataclass(frozen=True)
class Expiry:
    """公示期满: when, and what came of the objections."""

    on: date
    objections: int
    pending: int


@dataclass(frozen=True)
class Wording:
    """What every document of the edition says the same way."""

    edition: str  # 江津区第三届“津工精匠”
    basis: str  # 《关于开展第三届“津工精匠”评选活动的通知》（津人社发〔2021〕36号）
    award: str
    issuers: list[str]
    approver: str
    spec: CampaignSpec


@dataclass(frozen=True)
class Notice:
    """The 公示 of the formal candidates."""

    title: str
    wording: Wording
    period: str
    issued_on: date
    groups: list[Group]
    expiry: Expiry | None
    published: bool

    @property
    def count(self) -> int:
        return sum(len(g.people) for g in self.groups)


@dataclass(frozen=True)
class Decision:
    """The commendation decision (表彰决定) with its annex, the list of the commended."""

    title: str
    wording: Wording
    number: str
    decided_on: date
    groups: list[Group]
    published: bool
    addressees: str = field(default="")


def track_label(spec: CampaignSpec, track: Track) -> str:
    return f"“{spec.award_name}”" if track is Track.MAIN else f"“{spec.award_name}入围奖”"


def award_line(spec: CampaignSpec, track: Track) -> str:
    """江津区第三届“津工精匠” / 江津区第三届“津工精匠入围奖”."""
    return wording(spec).edition.removesuffix(f"“{spec.award_name}”") + track_label(spec, track)


def groups_in_stroke_order(spec: CampaignSpec, people: list[PublicCandidate]) -> list[Group]:
    """Per award (main first), each in 姓氏笔画 order; an award nobody holds is left out."""
    out = []
    for track in Track:
        members = [p for p in people if (p.track or Track.MAIN.value) == track.value]
        if members:
            out.append(Group(track, track_label(spec, track), by_strokes(members, lambda p: p.name)))
    return out


def wording(spec: CampaignSpec) -> Wording:
    edition = spec.name.removesuffix("评选活动").removesuffix("评选")
    # the notice's own title names the edition without the district: 关于开展第三届“津工精匠”评选活动的通知
    titled = "第" + spec.name.split("第", 1)[1] if "第" in spec.name else spec.name
    basis = f"《关于开展{titled}的通知》" + (f"（{spec.notice_ref}）" if spec.notice_ref else "")
    return Wording(edition=edition, basis=basis, award=spec.award_name, issuers=list(spec.publicity.issuers),
                   approver=spec.publicity.approver, spec=spec)


def _last_day(closes_at: datetime, spec: CampaignSpec) -> date:
    """The last day of a window that ends at ``closes_at`` (exclusive): midnight ends the day before."""
    return (spec.to_local(closes_at) - timedelta(microseconds=1)).date()


def period_text(opens_at: datetime, closes_at: datetime, spec: CampaignSpec) -> str:
    start, end = spec.to_local(opens_at), spec.to_local(closes_at)
    if start.time() == end.time() == datetime.min.time():
        return f"{_ymd(start.date())}至{_ymd(_last_day(closes_at, spec))}"
    return f"{_ymd(start.date())}{start:%H:%M}至{_ymd(end.date())}{end:%H:%M}"


def notice(session: Session, campaign: Campaign) -> Notice:
    spec = campaigns.spec_of(campaign)
    stage = campaigns.get_stage(session, campaign.id or 0, StageName.NOTICE)
    now = clock.now()
    expiry = None
    if stage.closed_at is not None or now >= stage.closes_at:
        lodged = objections.list_objections(session, campaign.id or 0)
        expiry = Expiry(on=_last_day(stage.closes_at, spec), objections=len(lodged),
                        pending=sum(1 for o in lodged if o.status == ObjectionStatus.OPEN))
    rows = public_lists.notice_rows(session, campaign)
    return Notice(title=f"{wording(spec).edition}正式候选人公示", wording=wording(spec),
                  period=period_text(stage.opens_at, stage.closes_at, spec),
                  issued_on=spec.to_local(stage.opens_at).date(), groups=groups_in_stroke_order(spec, rows),
                  expiry=expiry, published=bool(rows))


def notice_fragment(doc: Notice) -> Markup:
    """The 公示's wording and names, for the public page (autoescaped)."""
    return Markup(_env.get_template("notice_body.html").render(n=doc))


def notice_pdf(doc: Notice) -> bytes:
    html = _env.get_template("notice.html").render(n=doc, body=notice_fragment(doc), serif=CJK_SERIF, sans=CJK_SANS)
    return html_to_pdf(html)


def decision(session: Session, campaign: Campaign, *, record: CommendationDecision | None = None) -> Decision | None:
    """The decision as a document, once its number and date are entered (published or not)."""
    record = record or decisions.get_decision(session, campaign.id or 0)
    if record is None:
        return None
    spec = campaigns.spec_of(campaign)
    people = public_lists.honoured_rows(session, campaign)
    words = wording(spec)
    return Decision(title=f"关于命名表彰{words.edition}的决定", wording=words, number=record.number,
                    decided_on=record.decided_on, groups=groups_in_stroke_order(spec, people),
                    published=record.published_at is not None, addressees=spec.publicity.addressees)


def _names(group: Group) -> str:
    first = group.people[0].name
    return f"{first}等{len(group.people)}名同志" if len(group.people) > 1 else f"{first}同志"


def decision_paragraphs(doc: Decision) -> list[str]:
    """The body of the decision, one string a paragraph (the .docx and the PDF say the same)."""
    w = doc.wording
    district_edition = w.edition.removesuffix(f"“{w.award}”")  # 江津区第三届
    named = [f"命名{_names(g)}为{district_edition}{g.label}" if g.track is Track.MAIN
             else f"授予{_names(g)}{district_edition}{g.label}" for g in doc.groups]
    decided = "，".join(named) if named else "（名单待定）"
    return [
        f"为大力弘扬劳模精神、劳动精神和工匠精神，根据{w.basis}要求，经单位推荐和个人自荐、组织初选、投票评选、"
        f"综合评审和社会公示，并报{w.approver}审定，决定{decided}。",
        "希望受到表彰的同志珍惜荣誉，再接再厉，充分发挥示范引领作用。全区广大职工要以他们为榜样，"
        "大力弘扬工匠精神，钻研技术、精益求精，为推动全区经济社会高质量发展作出新的更大贡献。",
    ]


def annex_title(doc: Decision) -> str:
    return f"{doc.wording.edition}" + ("及" + "及".join(g.label for g in doc.groups[1:]) if len(doc.groups) > 1
                                       else "") + "名单"


def decision_pdf(doc: Decision) -> bytes:
    html = _env.get_template("decision.html").render(d=doc, paragraphs=decision_paragraphs(doc),
                                                     annex=annex_title(doc), serif=CJK_SERIF, sans=CJK_SANS)
    return html_to_pdf(html)


# --- Word ------------------------------------------------------------------------------------------

_SERIF_WORD = "仿宋"
_TITLE_WORD = "方正小标宋简体"


def _run_font(paragraph: Paragraph, text: str, *, size: float = 16, bold: bool = False,
              font: str = _SERIF_WORD) -> None:
    run = paragraph.add_run(text)
    run.font.size, run.font.bold, run.font.name = Pt(size), bold, font
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), font)


def decision_docx(doc: Decision) -> bytes:
    """The decision as Word (A4, 仿宋 三号 body, title centred), its annex on a new page."""
    word = Document()
    section = word.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.top_margin, section.bottom_margin, section.left_margin, section.right_margin = (
        Cm(3.7), Cm(3.5), Cm(2.8), Cm(2.6))
    number = word.add_paragraph()
    number.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(number, doc.number)
    title = word.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(title, doc.title, size=22, bold=True, font=_TITLE_WORD)
    if doc.addressees:
        _run_font(word.add_paragraph(), doc.addressees)
    for text in decision_paragraphs(doc):
        p = word.add_paragraph()
        p.paragraph_format.first_line_indent = Pt(32)
        _run_font(p, text)
    annex = word.add_paragraph()
    annex.paragraph_format.first_line_indent = Pt(32)
    _run_font(annex, f"附件：{annex_title(doc)}")
    for issuer in doc.wording.issuers:
        p = word.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _run_font(p, issuer)
    when = word.add_paragraph()
    when.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    _run_font(when, _ymd(doc.decided_on))
    annex_head = word.add_paragraph()
    annex_head.add_run().add_break(WD_BREAK.PAGE)
    _run_font(annex_head, "附件")
    heading = word.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(heading, annex_title(doc), size=18, bold=True, font=_TITLE_WORD)
    for g in doc.groups:
        sub = word.add_paragraph()
        _run_font(sub, f"{g.label}（{len(g.people)}名，按姓氏笔画排序）", bold=True)
        table = word.add_table(rows=1, cols=4)
        table.style = "Table Grid"
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        for cell, text in zip(table.rows[0].cells, ("序号", "姓名", "单位", "职务"), strict=True):
            _run_font(cell.paragraphs[0], text, size=12, bold=True)
        for i, person in enumerate(g.people, 1):
            cells = table.add_row().cells
            for cell, text in zip(cells, (str(i), person.name, person.employer, person.position), strict=True):
                _run_font(cell.paragraphs[0], text, size=12)
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()
