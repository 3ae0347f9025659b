"""A candidate's poster for chat apps (PNG, 750 × 1200): the campaign, the photo, the name and
编号, the employer, a QR code of the candidate's page (segno) and that address as text."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont, ImageOps

WIDTH, HEIGHT = 750, 1200
RED = (139, 0, 0)
#: where the QR code sits: its modules are ``QR_SCALE`` pixels, with a 4-module quiet zone
QR_TOP, QR_SCALE, QR_BORDER = 800, 6, 4
FONT_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-{}.ttc", "/usr/share/fonts/noto-cjk/NotoSansCJK-{}.ttc")


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    weight = "Bold" if bold else "Regular"
    for pattern in FONT_FILES:
        path = Path(pattern.format(weight))
        if path.exists():
            return ImageFont.truetype(str(path), size, index=2)  # the .ttc's Simplified Chinese face
    return ImageFont.load_default(size)


def qr_code(url: str) -> segno.QRCode:
    return segno.make(url, error="m", micro=False)


def qr_image(url: str) -> Image.Image:
    buffer = io.BytesIO()
    qr_code(url).save(buffer, kind="png", scale=QR_SCALE, border=QR_BORDER)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _centred(draw: ImageDraw.ImageDraw, y: int, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
             fill: tuple[int, int, int]) -> None:
    while text and draw.textlength(text, font=font) > WIDTH - 60:
        text = text[:-2] + "…"
    draw.text(((WIDTH - draw.textlength(text, font=font)) / 2, y), text, font=font, fill=fill)


def poster_png(*, title: str, name: str, number: int, employer: str, url: str, photo: Path | None) -> bytes:
    canvas = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, WIDTH, 150), fill=RED)
    _centred(draw, 30, title, _font(34, bold=True), (255, 255, 255))
    _centred(draw, 90, "网络投票 · 请为TA投上一票", _font(26), (255, 235, 235))
    if photo is not None:
        with Image.open(photo) as image:
            image.load()
            portrait = ImageOps.fit(image.convert("RGB"), (240, 320))
        canvas.paste(portrait, ((WIDTH - 240) // 2, 180))
    else:
        draw.rectangle(((WIDTH - 240) // 2, 180, (WIDTH + 240) // 2, 500), outline=(200, 200, 200), width=2)
    _centred(draw, 530, f"{number}号  {name}", _font(56, bold=True), (34, 34, 34))
    _centred(draw, 620, employer, _font(28), (85, 85, 85))
    _centred(draw, 690, "微信或手机相机扫码，查看事迹并投票", _font(26), (85, 85, 85))
    qr = qr_image(url)
    canvas.paste(qr, ((WIDTH - qr.width) // 2, QR_TOP))
    _centred(draw, min(HEIGHT - 60, QR_TOP + qr.height + 10), url, _font(24), (85, 85, 85))
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=True)
    return out.getvalue()
