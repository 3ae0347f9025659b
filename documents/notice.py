"""The campaign's notice (the file its campaign names with ``notice_file``) for download: the text
as the office wrote it, and a PDF set like the printed notice with 附件1–3 as their tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from config.campaign import CONFIG_DIR, CampaignSpec
from core.errors import NotFound
from documents import forms
from documents.pdf import documents_to_pdf
from nominations.models import NominationKind

_SECTION = re.compile(r"^[一二三四五六七八九十]+、")
_SUBSECTION = re.compile(r"^（[一二三四五六七八九十]+）")


@dataclass(frozen=True)
class Line:
    text: str
    style: str  # number, issuer, title, plain, section, subsection, sign, list


def notice_path(spec: CampaignSpec) -> Path:
    if not spec.notice_file:
        raise NotFound("the campaign names no notice file", message_zh="本届评选尚未提供通知原文")
    path = Path(spec.notice_file)
    return path if path.is_absolute() else CONFIG_DIR / path


def notice_text(spec: CampaignSpec) -> str:
    try:
        return notice_path(spec).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise NotFound(f"notice file {spec.notice_file} cannot be read", message_zh="通知原文暂不可用") from None


def split_notice(text: str) -> tuple[list[str], list[str]]:
    """The notice's body (up to its attachments) and its closing lines (…印发)."""
    raw = text.splitlines()
    end = next((i for i, line in enumerate(raw) if line.strip() == "附件1"), len(raw))
    closing = [line.strip() for line in raw[end:] if line.strip()]
    printed = [i for i, line in enumerate(closing) if line.endswith("印发")]
    tail = closing[printed[-1] - 1:] if printed and printed[-1] >= 1 else []
    return raw[:end], tail


def classify(body: list[str]) -> list[Line]:
    """Each line of the body with how it is set: the header lines centred, the headings bold,
    the signature on the right, paragraphs indented."""
    lines: list[Line] = []
    salutation_seen = False
    for raw in body:
        text = raw.strip()
        if not text:
            continue
        if not salutation_seen:
            if text.endswith("："):
                salutation_seen = True
                lines.append(Line(text, "plain-flush"))
            elif re.search(r"〔\d{4}〕\d+号$", text):
                lines.append(Line(text, "number"))
            elif text.startswith(("关于", "活动")) or (lines and lines[-1].style == "title"):
                lines.append(Line(text, "title"))
            else:
                lines.append(Line(text, "issuer"))
            continue
        indented = len(raw) - len(raw.lstrip()) >= 2 and len(text) < 32
        if indented or re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", text):
            lines.append(Line(text, "sign"))
        elif _SECTION.match(text):
            lines.append(Line(text, "section"))
        elif _SUBSECTION.match(text):
            lines.append(Line(text, "subsection"))
        elif text.startswith("附件：") or re.match(r"^\d\.江津区|^\d\.\S+表$", text):
            lines.append(Line(text, "list"))
        else:
            lines.append(Line(text, "plain"))
    return lines


def render_notice(spec: CampaignSpec, fmt: str) -> tuple[bytes, str, str]:
    """The notice as its text file (``txt``) or as a PDF with its attachments (``pdf``)."""
    text = notice_text(spec)
    stem = f"{spec.notice_ref or spec.name}-通知".replace("/", "")
    if fmt == "txt":
        return text.encode("utf-8"), "text/plain; charset=utf-8", f"{stem}.txt"
    if fmt != "pdf":
        raise NotFound(f"unknown notice format {fmt!r}", message_zh="没有这种格式的文件")
    return _notice_pdf(text, spec.model_dump_json()), forms.PDF, f"{stem}.pdf"


@lru_cache(maxsize=4)
def _notice_pdf(text: str, spec_json: str) -> bytes:
    spec = CampaignSpec.model_validate_json(spec_json)
    body, closing = split_notice(text)
    notice = forms.template("notice.html").render(lines=classify(body), closing=closing, **forms.font_families())
    annexes = [forms.plan_html(forms.plan_of(spec)),
               forms.sheet_html(forms.blank_sheet(spec, NominationKind.UNIT)),
               forms.sheet_html(forms.blank_sheet(spec, NominationKind.SELF))]
    return documents_to_pdf([notice, *annexes])
