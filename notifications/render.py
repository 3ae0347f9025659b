"""Rendering a mail: a pure function of a template name and a context.

Each template in ``templates/`` is one file with the blocks ``subject``, ``lead`` and (optional)
``detail``; it extends whichever layout it is given (``{% extends layout %}``), so the same file
renders as the subject line, the plain-text part and the HTML part. The HTML environment
autoescapes; both use ``StrictUndefined`` so a missing variable fails at queue time (in the test
or the transaction), never at send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from notifications.models import MailTemplate

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_text_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the code: no stat() per mail
)
_html_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)



def _nl2br(value: str) -> Markup:
    return Markup("<br>\n").join(escape(value).split("\n"))


_html_env.filters["nl2br"] = _nl2br


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def template_file(template: MailTemplate) -> str:
    return f"{template.value}.j2"


def render(template: MailTemplate, context: dict[str, Any]) -> Rendered:
    """Subject, plain text and HTML of ``template`` with ``context``. Raises on a missing
    variable (jinja2.UndefinedError)."""
    name = template_file(template)
    subject = _text_env.get_template(name).render({**context, "layout": "_subject.j2", "part": "subject"})
    subject = re.sub(r"\s+", " ", subject).strip()
    if not subject:
        raise ValueError(f"template {name} rendered an empty subject")
    text = _text_env.get_template(name).render({**context, "layout": "_text.j2", "part": "text"})
    html = _html_env.get_template(name).render({**context, "layout": "_html.j2", "part": "html"})
    return Rendered(subject=subject, text=_tidy(text), html=html.strip() + "\n")


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue  # one blank line between paragraphs is enough
        out.append(line)
    return "\n".join(out) + "\n"
