"""Evidence and photo uploads: streamed to disk, judged by content, never whole in memory.

``receive_upload`` reads a multipart body chunk by chunk, writing file parts to a temporary file
under ``uploads_dir/.tmp``; past the size limit it stops, deletes what it wrote and answers 413.
The type is sniffed from the first bytes with ``filetype`` (the file's name and the browser's
content type are not trusted): anything but an image, PDF, PPT/PPTX or video answers 415.
``keep`` moves an accepted file to its place; ``discard`` removes it (the caller does so when
the database transaction fails, so nothing is left half-stored).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filetype
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

IMAGE_TYPES = {"jpg", "png", "gif", "webp", "bmp"}
PHOTO_TYPES = {"jpg", "png"}
DOCUMENT_TYPES = {"pdf", "ppt", "pptx"}
VIDEO_TYPES = {"mp4", "mov", "avi", "webm", "mkv", "m4v", "mpg", "wmv", "flv"}
EVIDENCE_TYPES = IMAGE_TYPES | DOCUMENT_TYPES | VIDEO_TYPES

#: room for the form fields and part headers around the file itself
ENVELOPE_BYTES = 64 * 1024
MAX_FIELD_BYTES = 16 * 1024
SNIFF_BYTES = 8192


class UploadRejected(Exception):
    def __init__(self, status: int, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.status = status
        self.message_zh = message_zh


@dataclass
class ReceivedFile:
    field: str
    filename: str
    path: Path  # temporary, until ``keep``
    size: int = 0
    sha256: str = ""
    extension: str = ""
    content_type: str = ""


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)

    def discard(self) -> None:
        for f in self.files:
            discard(f.path)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def too_large(limit: int) -> UploadRejected:
    return UploadRejected(413, f"the file is larger than the limit of {_mb(limit)}",
                          f"文件超过大小限制（最大{_mb(limit)}），未保存")


async def receive_upload(request: Request, *, tmp_dir: Path, max_bytes: int) -> ReceivedForm:
    """Parse a multipart/form-data body, streaming file parts to ``tmp_dir``."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRejected(415, "send the file as multipart/form-data", "请以表单方式上传文件")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + ENVELOPE_BYTES:
        raise too_large(max_bytes)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    form = ReceivedForm()
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "part": None, "handle": None,
                             "hash": None, "size": 0, "text": bytearray(), "error": None}

    def on_part_begin() -> None:
        state["headers"] = {}
        state["part"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disposition:
            filename = os.path.basename(disposition[b"filename"].decode("utf-8", "replace").replace("\\", "/"))
            fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
            received = ReceivedFile(field=name, filename=filename[:255] or "upload", path=Path(tmp))
            form.files.append(received)
            state["part"] = received
            state["handle"] = os.fdopen(fd, "wb")
            state["hash"] = hashlib.sha256()
            state["size"] = 0
        else:
            state["part"] = name
            state["text"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["error"] is not None:
            return
        chunk = data[start:end]
        if isinstance(state["part"], ReceivedFile):
            state["size"] += len(chunk)
            if state["size"] > max_bytes:
                state["error"] = too_large(max_bytes)
                return
            state["handle"].write(chunk)
            state["hash"].update(chunk)
        else:
            state["text"] += chunk
            if len(state["text"]) > MAX_FIELD_BYTES:
                state["error"] = UploadRejected(413, "a form field is too long", "表单内容过长")

    def on_part_end() -> None:
        part = state["part"]
        if isinstance(part, ReceivedFile):
            state["handle"].close()
            state["handle"] = None
            part.size, part.sha256 = state["size"], state["hash"].hexdigest()
        elif isinstance(part, str):
            form.fields[part] = bytes(state["text"]).decode("utf-8", "replace")

    callbacks: Any = {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if state["error"] is not None:
                raise state["error"]
        parser.finalize()
    except UploadRejected:
        _cleanup(state, form)
        raise
    except Exception as exc:  # a malformed body
        _cleanup(state, form)
        raise UploadRejected(400, f"malformed upload: {exc}", "上传的数据不完整，请重试") from None
    if state["handle"] is not None:  # the body ended inside a file part
        _cleanup(state, form)
        raise UploadRejected(400, "the upload was cut off", "上传的数据不完整，请重试")
    return form


def _cleanup(state: dict[str, Any], form: ReceivedForm) -> None:
    if state["handle"] is not None:
        with contextlib.suppress(OSError):
            state["handle"].close()
        state["handle"] = None
    form.discard()


def sniff(received: ReceivedFile, allowed: set[str]) -> None:
    """Set the file's type from its content; refuse (415) anything not in ``allowed``."""
    with received.path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    kind = filetype.guess(head) if head else None
    if kind is None or kind.extension not in allowed:
        found = kind.mime if kind else "unknown content"
        wanted = "、".join(sorted(allowed))
        raise UploadRejected(415, f"{received.filename}: {found} is not accepted here (accepted: "
                             f"{', '.join(sorted(allowed))})",
                             f"文件“{received.filename}”的类型不被接受（按内容识别），可接受：{wanted}")
    received.extension, received.content_type = kind.extension, kind.mime


def keep(received: ReceivedFile, uploads_dir: Path, folder: str) -> str:
    """Move an accepted file to its place; returns its storage key (relative to uploads_dir)."""
    key = f"{folder}/{uuid.uuid4().hex}.{received.extension}"
    target = uploads_dir / key
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(received.path, target)
    received.path = target
    return key


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def stored_path(uploads_dir: Path, storage_key: str) -> Path:
    path = (uploads_dir / storage_key).resolve()
    if uploads_dir.resolve() not in path.parents:
        raise ValueError(f"storage key {storage_key!r} leaves the uploads folder")
    return path
