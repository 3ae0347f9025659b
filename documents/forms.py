"""The nomination forms on paper: 附件2 推荐表 and 附件3 自荐表, filled or blank, and 附件1 推荐计划表,
as Word (.docx, what offices edit) and PDF (A4), laid out like the notice's tables.

``render_form`` is what the rooms above call for one nomination; ``render_blank`` gives the empty
forms of a campaign. Both return ``(content, media type, download filename)``. What goes on the
paper is gathered once into a ``Sheet``; ``documents.word`` and the HTML templates only lay it out.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, Template, select_autoescape
from markupsafe import Markup
from sqlmodel import Session

from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import CampaignSpec, StageName
from config.settings import Settings
from core.errors import NotFound
from documents.pdf import CJK_SANS, CJK_SERIF, html_to_pdf
from nominations import attachments
from nominations.models import Nomination, NominationKind

Format = Literal["docx", "pdf"]
BlankName = Literal["plan", "recommend", "self"]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF = "application/pdf"
MEDIA_TYPES: dict[str, str] = {"docx": DOCX, "pdf": PDF}
#: a blank date on the paper, to be written by hand: 2021年　　月　　日
BLANK_DAY = "　　月　　日"
TEMPLATES = Path(__file__).resolve().parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Cell:
    label: str
    value: str = ""


@dataclass(frozen=True)
class Sheet:
    """One form as it stands on paper: 附件2 (unit) or 附件3 (self), filled or blank."""

    attachment: int  # 2 or 3
    title: str  # 江津区第三届“津工精匠”推荐表
    subtitle: str  # （单位推荐和社团推荐表）
    #: the four rows beside the photo, as the notice has them
    grid: list[list[Cell]]
    honours: str = ""
    achievements: str = ""
    deeds: str = ""
    deeds_label: str = "主要事迹（500字以内）"
    #: 推荐单位意见 … （盖章） … 年 月 日, or 申请人 签字： … 年 月 日
    opinion_label: str = "推荐单位\n意见"
    opinion: str = ""
    opinion_mark: str = "（盖章）"
    opinion_date: str = ""
    committee_opinion: str = ""
    committee_date: str = ""
    note: str = ""
    reference: str = ""  # 申报编号 on a filled form
    photo: bytes | None = None
    photo_type: str = "image/jpeg"
    blank: bool = True

    @property
    def short_name(self) -> str:
        return "推荐表" if self.attachment == 2 else "自荐表"


@dataclass(frozen=True)
class PlanRow:
    category: str
    unit: str
    quota: int
    span: int = 0  # rows the category cell covers (0: covered by the row above)


@dataclass(frozen=True)
class Plan:
    title: str
    rows: list[PlanRow] = field(default_factory=list)
    note: str = "备注：各单位、组织请广泛宣传，如有符合条件的人员，不受名额限制。"


def ymd(value: date | None, year: int | None) -> str:
    """A date as the forms write it (2021年5月1日); none: the year with room for month and day."""
    if value is not None:
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{year}年{BLANK_DAY}" if year else f"　　年{BLANK_DAY}"


def campaign_year(spec: CampaignSpec) -> int:
    return spec.to_local(spec.stage(StageName.NOMINATION).opens).year


def form_title(spec: CampaignSpec, kind: NominationKind) -> str:
    base = spec.name.removesuffix("评选活动").removesuffix("评选")
    return base + ("推荐表" if kind is NominationKind.UNIT else "自荐表")


def grades_note(spec: CampaignSpec) -> str:
    titles = [g for g in spec.technical_grades if g.endswith("职称")]
    grades = [g for g in spec.technical_grades if g not in titles]
    text = "/".join(grades) + ("或" + "/".join(titles) if titles else "")
    return f"备注：技术等级职称一栏填：{text}。"


def _grid(values: dict[str, str]) -> list[list[Cell]]:
    v = values.get
    return [
        [Cell("姓　　名", v("name", "")), Cell("性　　别", v("sex", "")), Cell("民　　族", v("ethnicity", ""))],
        [Cell("出生日期", v("birth_date", "")), Cell("文化程度", v("education", "")),
         Cell("政治面貌", v("political_status", ""))],
        [Cell("单　　位", v("employer", "")), Cell("职　　务", v("position", ""))],
        [Cell("技术等级\n（职称）", v("technical_grade", "")), Cell("工　　龄", v("years_of_service", "")),
         Cell("联系电话", v("phone", ""))],
    ]


def _kind_texts(kind: NominationKind) -> dict[str, str]:
    if kind is NominationKind.UNIT:
        return {"subtitle": "（单位推荐和社团推荐表）", "opinion_label": "推荐单位\n意见", "opinion_mark": "（盖章）"}
    return {"subtitle": "（个人申报）", "opinion_label": "申请人", "opinion_mark": "签字："}


def blank_sheet(spec: CampaignSpec, kind: NominationKind) -> Sheet:
    year = campaign_year(spec)
    texts = _kind_texts(kind)
    return Sheet(attachment=2 if kind is NominationKind.UNIT else 3, title=form_title(spec, kind),
                 subtitle=texts["subtitle"], grid=_grid({}), opinion_label=texts["opinion_label"],
                 opinion_mark=texts["opinion_mark"], opinion_date=ymd(None, year), committee_date=ymd(None, year),
                 note=grades_note(spec), deeds_label=f"主要事迹（{spec.rules.deeds_max_chars}字以内）")


def nomination_sheet(spec: CampaignSpec, n: Nomination, *, unit_name: str | None,
                     photo: tuple[bytes, str] | None) -> Sheet:
    kind = NominationKind(n.kind)
    year = campaign_year(spec)
    texts = _kind_texts(kind)
    if kind is NominationKind.UNIT:
        opinion = n.unit_opinion or ""
        mark = f"{unit_name}（盖章）" if unit_name else "（盖章）"
        opinion_date = ymd(n.unit_opinion_date, year)
    else:
        opinion = ""
        mark = f"签字：{n.applicant_signature or ''}"
        opinion_date = ymd(n.applicant_signed_date, year)
    values = {
        "name": n.name or "", "sex": str(n.sex or ""), "ethnicity": n.ethnicity or "",
        "birth_date": f"{n.birth_date.year}年{n.birth_date.month}月" if n.birth_date else "",
        "education": n.education or "", "political_status": n.political_status or "",
        "employer": n.employer or "", "position": n.position or "", "technical_grade": n.technical_grade or "",
        "years_of_service": f"{n.years_of_service}年" if n.years_of_service is not None else "",
        "phone": n.phone or "",
    }
    return Sheet(
        attachment=2 if kind is NominationKind.UNIT else 3, title=form_title(spec, kind),
        subtitle=texts["subtitle"], grid=_grid(values), honours=n.honours or "", achievements=n.achievements or "",
        deeds=n.deeds or "", deeds_label=f"主要事迹（{spec.rules.deeds_max_chars}字以内）",
        opinion_label=texts["opinion_label"], opinion=opinion, opinion_mark=mark, opinion_date=opinion_date,
        committee_opinion=n.committee_opinion or "", committee_date=ymd(n.committee_opinion_date, year),
        note=grades_note(spec), reference=f"申报编号：{n.id}", photo=photo[0] if photo else None,
        photo_type=photo[1] if photo else "image/jpeg", blank=False,
    )


def plan_of(spec: CampaignSpec) -> Plan:
    rows: list[PlanRow] = []
    units = list(spec.units)
    for i, unit in enumerate(units):
        starts = i == 0 or units[i - 1].category != unit.category
        span = 0
        if starts:
            span = 1
            while i + span < len(units) and units[i + span].category == unit.category:
                span += 1
        rows.append(PlanRow(unit.category, unit.name, unit.quota, span))
    return Plan(title=spec.name.removesuffix("评选活动").removesuffix("评选") + "推荐计划表", rows=rows)


# --- rendering --------------------------------------------------------------------------------


def font_families() -> dict[str, Markup]:
    """The CSS font lists, as CSS (autoescape would turn their quotes into entities)."""
    return {"serif": Markup(CJK_SERIF), "sans": Markup(CJK_SANS)}


def template(name: str) -> Template:
    return _env.get_template(name)


def sheet_html(sheet: Sheet) -> str:
    photo = None
    if sheet.photo:
        photo = f"data:{sheet.photo_type};base64," + base64.b64encode(sheet.photo).decode("ascii")
    return _env.get_template("form.html").render(s=sheet, photo=photo, **font_families())


def plan_html(plan: Plan) -> str:
    return _env.get_template("plan.html").render(plan=plan, **font_families())


#: filled PDFs kept in this process, by the digest of their HTML: a form downloaded again unchanged
#: (the applicant, the unit and the office each fetch it) is not laid out again (about 1 s each)
PDF_CACHE_SIZE = 64
_pdf_cache: OrderedDict[bytes, bytes] = OrderedDict()
_pdf_cache_lock = threading.Lock()


def _sheet_bytes(sheet: Sheet, fmt: Format) -> bytes:
    if fmt == "docx":
        from documents import word

        return word.sheet_docx(sheet)
    html = sheet_html(sheet)
    key = hashlib.blake2b(html.encode("utf-8"), digest_size=16).digest()
    with _pdf_cache_lock:
        if key in _pdf_cache:
            _pdf_cache.move_to_end(key)
            return _pdf_cache[key]
    content = html_to_pdf(html)
    with _pdf_cache_lock:
        _pdf_cache[key] = content
        while len(_pdf_cache) > PDF_CACHE_SIZE:
            _pdf_cache.popitem(last=False)
    return content


def safe_filename_part(text: str) -> str:
    """A name as part of a download's filename: no path separators, control or reserved characters."""
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f\x7f]+', "", text).strip(" .")
    return cleaned[:40]


def _check_format(fmt: str) -> None:
    if fmt not in MEDIA_TYPES:
        raise NotFound(f"unknown document format {fmt!r}", message_zh="没有这种格式的文件")


def render_form(session: Session, nomination_id: int, fmt: Format, settings: Settings) -> tuple[bytes, str, str]:
    """The filled 推荐表 (附件2) or 自荐表 (附件3) of one nomination, with its photo."""
    _check_format(fmt)
    n = session.get(Nomination, nomination_id)
    if n is None:
        raise NotFound(f"nomination {nomination_id} not found", message_zh="未找到该申报")
    campaign = session.get(Campaign, n.campaign_id)
    if campaign is None:
        raise NotFound(f"campaign of nomination {nomination_id} not found", message_zh="未找到该申报")
    spec = campaigns.spec_of(campaign)
    unit = campaigns.find_unit(session, n.unit_id)
    photo: tuple[bytes, str] | None = None
    stored = attachments.photo_of(session, n)
    if stored is not None:
        try:
            photo = (attachments.stored_path(settings.uploads_dir, stored.storage_key).read_bytes(),
                     stored.content_type)
        except (OSError, ValueError):
            photo = None  # the file is gone: the box stays empty, as on a form without a photo
    sheet = nomination_sheet(spec, n, unit_name=unit.name if unit else None, photo=photo)
    who = safe_filename_part(n.name or "") or f"申报{n.id}"
    filename = f"附件{sheet.attachment}-{sheet.short_name}-{who}.{fmt}"
    return _sheet_bytes(sheet, fmt), MEDIA_TYPES[fmt], filename


BLANK_FILENAMES = {"plan": "附件1-推荐计划表", "recommend": "附件2-推荐表", "self": "附件3-自荐表"}


def render_blank(name: BlankName, fmt: Format, spec: CampaignSpec) -> tuple[bytes, str, str]:
    """An empty form of the campaign (附件1–3): the same for everyone, so it is rendered once."""
    if name not in BLANK_FILENAMES:
        raise NotFound(f"unknown form {name!r}", message_zh="没有这个附件")
    _check_format(fmt)
    content = _blank_cached(name, fmt, spec.model_dump_json())
    return content, MEDIA_TYPES[fmt], f"{BLANK_FILENAMES[name]}.{fmt}"


@lru_cache(maxsize=12)
def _blank_cached(name: str, fmt: str, spec_json: str) -> bytes:
    spec = CampaignSpec.model_validate_json(spec_json)
    if name == "plan":
        plan = plan_of(spec)
        if fmt == "docx":
            from documents import word

            return word.plan_docx(plan)
        return html_to_pdf(plan_html(plan))
    kind = NominationKind.UNIT if name == "recommend" else NominationKind.SELF
    return _sheet_bytes(blank_sheet(spec, kind), "docx" if fmt == "docx" else "pdf")
