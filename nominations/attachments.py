"""Evidence and photos of a nomination: judged by content, stored under the uploads folder,
listed and fetched for download.

The HTTP side (``web.uploads``) streams the body to a temporary file and hands it over as an
``Upload``; here the file is judged by its first bytes with ``filetype`` (the file's name and the
browser's content type are not trusted), moved to its place and recorded. Only images, PDF,
PPT/PPTX and video are evidence; a photo is a JPEG or PNG under its own, smaller size limit, and is
re-encoded from its pixels (no EXIF, nothing appended) before it is stored.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import filetype
from sqlmodel import Session, col, select

from core import clock
from core.errors import NotFound, TooLarge, UnsupportedType, ValidationFailed
from nominations import drafts, photos
from nominations.models import Attachment, AttachmentKind, Nomination

IMAGE_TYPES = {"jpg", "png", "gif", "webp", "bmp"}
PHOTO_TYPES = {"jpg", "png"}
DOCUMENT_TYPES = {"pdf", "ppt", "pptx"}
VIDEO_TYPES = {"mp4", "mov", "avi", "webm", "mkv", "m4v", "mpg", "wmv", "flv"}
EVIDENCE_TYPES = IMAGE_TYPES | DOCUMENT_TYPES | VIDEO_TYPES
SNIFF_BYTES = 8192


@dataclass
class Upload:
    """A received file in a temporary place. ``judge`` fills in the type found by content;
    ``store`` moves the file, so ``path`` always says where it is to clean up after a failure."""

    filename: str
    path: Path
    size: int = 0
    sha256: str = ""
    extension: str = ""
    content_type: str = ""


@dataclass(frozen=True)
class StoredFile:
    attachment: Attachment
    path: Path


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the file is larger than the limit of {_mb(limit)}",
                    message_zh=f"文件超过大小限制（最大{_mb(limit)}），未保存")


def parse_kind(raw: str | None) -> AttachmentKind:
    try:
        return AttachmentKind(raw or AttachmentKind.OTHER.value)
    except ValueError:
        known = ", ".join(k.value for k in AttachmentKind)
        raise ValidationFailed(f"unknown attachment kind {raw!r}; kinds: {known}",
                               message_zh="材料类别不正确") from None


def judge(upload: Upload, kind: AttachmentKind, *, photo_max_bytes: int) -> None:
    """Refuse a photo over its limit and any file whose content is not accepted for ``kind``;
    otherwise set the upload's type from its content. A photo is re-encoded in place
    (``nominations.photos``); other evidence is kept as uploaded and always sent as a download."""
    if kind is AttachmentKind.PHOTO and upload.size > photo_max_bytes:
        raise too_large(photo_max_bytes)
    allowed = PHOTO_TYPES if kind is AttachmentKind.PHOTO else EVIDENCE_TYPES
    with upload.path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    found = filetype.guess(head) if head else None
    if found is None or found.extension not in allowed:
        seen = found.mime if found else "unknown content"
        raise UnsupportedType(f"{upload.filename}: {seen} is not accepted here (accepted: "
                              f"{', '.join(sorted(allowed))})",
                              message_zh=f"文件“{upload.filename}”的类型不被接受（按内容识别），"
                                         f"可接受：{'、'.join(sorted(allowed))}")
    upload.extension, upload.content_type = found.extension, found.mime
    if kind is AttachmentKind.PHOTO:  # shown publicly: only pixels we wrote leave the server
        upload.size, upload.sha256, upload.content_type = photos.reencode(upload.path, found.extension,
                                                                          upload.filename)


def store(session: Session, token: str, kind: AttachmentKind, upload: Upload, uploads_dir: Path) -> Attachment:
    """Move a judged upload into the folder of the draft behind ``token`` and record it; a photo
    becomes the nomination's photo. The caller removes ``upload.path`` if the transaction fails."""
    nomination = drafts.editable_by_token(session, token)
    key = f"n{nomination.id}/{uuid.uuid4().hex}.{upload.extension}"
    target = uploads_dir / key
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(upload.path, target)
    upload.path = target
    return record(session, nomination, kind, filename=upload.filename, content_type=upload.content_type,
                  size=upload.size, sha256=upload.sha256, storage_key=key)


def record(session: Session, nomination: Nomination, kind: AttachmentKind, *, filename: str, content_type: str,
           size: int, sha256: str, storage_key: str) -> Attachment:
    """The row of a file stored under ``storage_key``; a photo becomes the nomination's photo."""
    attachment = Attachment(nomination_id=nomination.id or 0, kind=kind, filename=filename,
                            content_type=content_type, size=size, sha256=sha256, storage_key=storage_key,
                            uploaded_at=clock.now())
    session.add(attachment)
    session.flush()
    if kind is AttachmentKind.PHOTO:
        nomination.photo_attachment_id = attachment.id
        nomination.updated_at = clock.now()
        session.add(nomination)
        session.flush()
    return attachment


def attachments_of(session: Session, nomination_id: int) -> list[Attachment]:
    query = select(Attachment).where(Attachment.nomination_id == nomination_id).order_by(col(Attachment.id))
    return list(session.exec(query))


def photo_of(session: Session, nomination: Nomination) -> Attachment | None:
    if nomination.photo_attachment_id is None:
        return None
    return session.get(Attachment, nomination.photo_attachment_id)


def stored_path(uploads_dir: Path, storage_key: str) -> Path:
    path = (uploads_dir / storage_key).resolve()
    if uploads_dir.resolve() not in path.parents:
        raise ValueError(f"storage key {storage_key!r} leaves the uploads folder")
    return path


def fetch(session: Session, uploads_dir: Path, attachment_id: int, *,
          nomination: Nomination | None = None) -> StoredFile:
    """An attachment with its file, for download; with ``nomination``, only one of its own (an
    applicant's link opens that nomination's files and no other)."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or (nomination is not None and attachment.nomination_id != nomination.id):
        raise NotFound(f"attachment {attachment_id} not found")
    path = stored_path(uploads_dir, attachment.storage_key)
    if not path.exists():
        raise NotFound(f"attachment {attachment_id}: file missing")
    return StoredFile(attachment, path)
