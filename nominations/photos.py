"""A candidate's photo is re-encoded at upload, so what leaves the server is pixels we wrote.

The photo is shown on public pages, so the bytes an applicant sent never leave as they came: a
file that is a valid JPEG and also carries HTML or script after (or inside) the image data (a
polyglot) is decoded to pixels and written anew by Pillow, and everything but the pixels (EXIF
with its GPS position and camera, comments, ICC profile, text chunks) is dropped. The EXIF
orientation is applied to the pixels first, so an upright phone photo stays upright.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import UnsupportedType

#: Pillow's format name and our content type for each photo type judged by content
FORMATS = {"jpg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
#: a passport photo needs far less; the cap keeps a small "decompression bomb" file from taking
#: gigabytes of memory (40 M pixels is a 48-megapixel phone photo's neighbourhood, ~120 MB as RGB)
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 90


def _unreadable(filename: str, why: str) -> UnsupportedType:
    return UnsupportedType(f"{filename}: the photo cannot be read as an image ({why})",
                           message_zh=f"照片“{filename}”无法识别为图片，请重新导出后上传（JPEG或PNG）")


def _decode(path: Path, fmt: str, filename: str) -> Image.Image:
    """The photo's pixels, upright, with no metadata attached."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[fmt]) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise _unreadable(filename, f"{image.width}×{image.height} pixels is too large")
                image.load()
                upright = ImageOps.exif_transpose(image)
    except UnsupportedType:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise _unreadable(filename, str(exc) or type(exc).__name__) from None
    if fmt == "JPEG":
        mode = "L" if upright.mode == "L" else "RGB"
    else:
        has_alpha = "A" in upright.mode or "transparency" in upright.info
        mode = "RGBA" if has_alpha else ("L" if upright.mode == "L" else "RGB")
    clean = upright.convert(mode)
    clean.info = {}  # Pillow would carry a JPEG comment or an ICC profile over from here
    return clean


def reencode(path: Path, extension: str, filename: str) -> tuple[int, str, str]:
    """Rewrite the photo at ``path`` (judged by content as ``extension``) from its pixels alone.
    Returns the new size, SHA-256 and content type; refuses a file Pillow cannot decode."""
    fmt, content_type = FORMATS[extension]
    clean = _decode(path, fmt, filename)
    options: dict[str, Any] = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {"optimize": True}
    tmp = path.with_name(path.name + ".clean")
    try:
        clean.save(tmp, format=fmt, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest(), content_type


#: the widths the public pages ask for (a bounded set: a crafted query cannot fill the disk)
THUMB_WIDTHS = (120, 240, 480)


def thumbnail(source: Path, target: Path, width: int) -> Path:
    """``source`` (a photo we re-encoded) at most ``width`` pixels wide as a JPEG at ``target``,
    written once (atomically) and reused; a small photo is not enlarged."""
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    with Image.open(source) as image:
        image.load()
        small = image.convert("RGB")
    if small.width > width:
        small = small.resize((width, max(1, round(small.height * width / small.width))), Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        small.save(tmp, format="JPEG", quality=82, optimize=True, progressive=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
