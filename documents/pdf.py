"""HTML to PDF (A4) with WeasyPrint; Chinese set in Debian's Noto CJK fonts (package fonts-noto-cjk)."""

from __future__ import annotations

from weasyprint import HTML

#: the families the documents' CSS names; WeasyPrint finds them through fontconfig
CJK_SERIF = '"Noto Serif CJK SC", "Noto Serif CJK", "Source Han Serif SC", serif'
CJK_SANS = '"Noto Sans CJK SC", "Noto Sans CJK", "Source Han Sans SC", sans-serif'


def html_to_pdf(html: str, base_url: str | None = None) -> bytes:
    """Render a whole HTML document (its own ``@page`` rules set A4 and margins) to PDF bytes."""
    return bytes(HTML(string=html, base_url=base_url).write_pdf())
