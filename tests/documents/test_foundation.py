"""The two tools every document uses: stroke order and PDF with Chinese glyphs."""

import shutil
import subprocess

import pytest

from documents.collation import by_strokes
from documents.pdf import CJK_SERIF, html_to_pdf


def test_names_sort_by_surname_strokes_not_code_points():
    names = ["王小明", "丁一", "李四", "张三", "马力", "于伟", "刘德"]
    # 丁 2 strokes, 于 马 3, 王 4, 刘 6, 李 张 7 (in code points 丁 < 于 < 刘 < 张 < 李 < 王 < 马)
    assert by_strokes(names, str) == ["丁一", "于伟", "马力", "王小明", "刘德", "张三", "李四"]


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) is not installed")
def test_a_pdf_carries_chinese_text(tmp_path):
    pdf = html_to_pdf(f"<html><body style='font-family:{CJK_SERIF}'><p>推荐单位意见（盖章）</p></body></html>")
    assert pdf.startswith(b"%PDF")
    (tmp_path / "t.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(tmp_path / "t.pdf"), "-"], capture_output=True, text=True).stdout
    assert "推荐单位意见（盖章）" in text
