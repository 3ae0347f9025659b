"""Uploads and downloads of attachments over HTTP: the body streamed to disk, never whole in
memory, and stored files sent back.

``receive_upload`` reads a multipart body chunk by chunk, writing file parts to a temporary file
under ``uploads_dir/.tmp``; past the size limit it stops, deletes what it wrote and answers 413.
``store_upload`` hands the one file to ``nominations.attachments`` to be judged and stored, and
removes it when anything fails (so nothing is left half-stored). ``send_file`` answers a stored
attachment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio
from fastapi.responses import FileResponse
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from core.errors import TooLarge
from nominations import attachments, drafts
from nominations.models import Attachment
from storage.db import unit_of_work

#: room for the form fields and part headers around the file itself
ENVELOPE_BYTES = 64 * 1024
MAX_FIELD_BYTES = 16 * 1024


class UploadRejected(Exception):
    """The HTTP body itself is refused (not multipart, malformed, a field too long, no file)."""

    def __init__(self, status: int, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.status = status
        self.message_zh = message_zh


@dataclass
class ReceivedFile(attachments.Upload):
    field: str = ""  # the form field it came in


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)

    def discard(self) -> None:
        for f in self.files:
            discard(f.path)


class _Receiver:
    """The multipart parser's callbacks: file parts go to temporary files as they arrive, form
    fields to memory (both capped); the first refusal is kept in ``error`` for the reading loop
    to raise, since raising inside a callback would leave the parser half-way."""

    def __init__(self, tmp_dir: Path, max_bytes: int) -> None:
        self.tmp_dir, self.max_bytes = tmp_dir, max_bytes
        self.form = ReceivedForm()
        self.headers: dict[bytes, bytes] = {}
        self.header_field, self.header_value = b"", b""
        self.part: ReceivedFile | str | None = None
        self.handle: IO[bytes] | None = None
        self.hash = hashlib.sha256()
        self.size = 0
        self.text = bytearray()
        self.error: UploadRejected | TooLarge | None = None

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data, "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.headers = {}
        self.part = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in disposition:
            self.part, self.text = name, bytearray()
            return
        filename = os.path.basename(disposition[b"filename"].decode("utf-8", "replace").replace("\\", "/"))
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, suffix=".part")
        received = ReceivedFile(field=name, filename=filename[:255] or "upload", path=Path(tmp))
        self.form.files.append(received)
        self.part, self.handle, self.hash, self.size = received, os.fdopen(fd, "wb"), hashlib.sha256(), 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = data[start:end]
        if isinstance(self.part, ReceivedFile) and self.handle is not None:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                self.error = attachments.too_large(self.max_bytes)
                return
            self.handle.write(chunk)
            self.hash.update(chunk)
        else:
            self.text += chunk
            if len(self.text) > MAX_FIELD_BYTES:
                self.error = UploadRejected(413, "a form field is too long", "表单内容过长")

    def on_part_end(self) -> None:
        if isinstance(self.part, ReceivedFile) and self.handle is not None:
            self.handle.close()
            self.handle = None
            self.part.size, self.part.sha256 = self.size, self.hash.hexdigest()
        elif isinstance(self.part, str):
            self.form.fields[self.part] = bytes(self.text).decode("utf-8", "replace")

    def cleanup(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(OSError):
                self.handle.close()
            self.handle = None
        self.form.discard()


async def receive_upload(request: Request, *, tmp_dir: Path, max_bytes: int) -> ReceivedForm:
    """Parse a multipart/form-data body, streaming file parts to ``tmp_dir``."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRejected(415, "send the file as multipart/form-data", "请以表单方式上传文件")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + ENVELOPE_BYTES:
        raise attachments.too_large(max_bytes)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(tmp_dir, max_bytes)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if receiver.error is not None:
                raise receiver.error
        parser.finalize()
    except (UploadRejected, TooLarge, OSError):  # OSError: the disk is full (answered 503 by web.errors)
        receiver.cleanup()
        raise
    except Exception as exc:  # a malformed body
        receiver.cleanup()
        raise UploadRejected(400, f"malformed upload: {exc}", "上传的数据不完整，请重试") from None
    if receiver.handle is not None:  # the body ended inside a file part
        receiver.cleanup()
        raise UploadRejected(400, "the upload was cut off", "上传的数据不完整，请重试")
    return receiver.form


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def store_upload(request: Request, token: str) -> Attachment:
    """Stream the upload to disk, have it judged, then record it in one transaction; on any
    failure nothing stays behind (neither the file nor a row)."""
    engine = request.app.state.engine
    settings = request.app.state.settings
    uploads_dir = Path(settings.uploads_dir)
    with unit_of_work(engine, readonly=True) as session:  # refuse early, before reading the body
        drafts.editable_by_token(session, token)
    form = await receive_upload(request, tmp_dir=uploads_dir / ".tmp", max_bytes=settings.upload_max_bytes)
    try:
        kind = attachments.parse_kind(form.fields.get("kind"))
        files = [f for f in form.files if f.field == "file"]
        if len(files) != 1 or files[0].size == 0:
            raise UploadRejected(422, "send exactly one non-empty file in the field 'file'", "请选择要上传的文件")
        # judged before the write transaction opens: reading the file holds no lock; in a worker
        # thread, since re-encoding a photo is CPU work the event loop (and the vote lane) must not wait on
        await anyio.to_thread.run_sync(partial(attachments.judge, files[0], kind,
                                               photo_max_bytes=settings.photo_max_bytes))
        with unit_of_work(engine) as session:
            return attachments.store(session, token, kind, files[0], uploads_dir)
    except BaseException:
        form.discard()
        raise


#: the types a photo is re-encoded to (nominations/photos.py); only these are ever shown inline
INLINE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
#: on top of the page policy (web/headers.py): a stored file opened as a page runs nothing, loads
#: nothing and is its own opaque origin
FILE_CSP = "default-src 'none'; sandbox"


def send_file(stored: attachments.StoredFile, *, public_photo: bool = False) -> FileResponse:
    """Every stored file is a download (``Content-Disposition: attachment``) under its own name;
    a public photo of a re-encoded image type shows inline and may be cached for a few minutes
    (it is only shown while its candidate is on a public list). ``nosniff`` comes with every answer."""
    attachment = stored.attachment
    if public_photo and attachment.content_type in INLINE_IMAGE_TYPES:
        return FileResponse(stored.path, media_type=attachment.content_type, content_disposition_type="inline",
                            filename=f"photo-{attachment.id}.{attachment.content_type.removeprefix('image/')}",
                            headers={"Cache-Control": "public, max-age=300", "Content-Security-Policy": FILE_CSP})
    return FileResponse(stored.path, media_type=attachment.content_type or "application/octet-stream",
                        filename=attachment.filename, content_disposition_type="attachment",
                        headers={"Content-Security-Policy": FILE_CSP})
