"""HTML to PDF (A4) with WeasyPrint; Chinese set in Debian's Noto CJK fonts (package fonts-noto-cjk)."""

from __future__ import annotations

from weasyprint import HTML

#: the families the documents' CSS names; WeasyPrint finds them through fontconfig
CJK_SERIF = '"Noto Serif CJK SC", "Noto Serif CJK", "Source Han Serif SC", serif'
CJK_SANS = '"Noto Sans CJK SC", "Noto Sans CJK", "Source Han Sans SC", sans-serif'


def html_to_pdf(html: str, base_url: str | None = None) -> bytes:
    """Render a whole HTML document (its own ``@page`` rules set A4 and margins) to PDF bytes."""
    return bytes(HTML(string=html, base_url=base_url).write_pdf())


def documents_to_pdf(htmls: list[str], base_url: str | None = None) -> bytes:
    """Several HTML documents, each with its own styles, one after the other in one PDF."""
    rendered = [HTML(string=html, base_url=base_url).render() for html in htmls]
    pages = [page for document in rendered for page in document.pages]
    return bytes(rendered[0].copy(pages).write_pdf())
