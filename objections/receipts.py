"""An objection's receipt number (受理回执号): given to whoever lodges it (on the page, in the
acknowledgement mail, in the API's answer), stored only as a keyed hash. With it, anyone holding
it can see that the objection was received, when, and its outcome; nothing else (not the facts,
not who lodged it, not the ruling's reasons)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from config.secrets import keyed_hash
from objections.models import Objection, ObjectionStatus
from voting import receipts as codes

STATUS_ZH = {ObjectionStatus.OPEN: "核查中", ObjectionStatus.UPHELD: "异议成立，已取消该候选人资格",
             ObjectionStatus.DISMISSED: "经核查异议不成立"}


def digest(code: str) -> str | None:
    cleaned = codes.normalise(code)
    return None if cleaned is None else keyed_hash(f"objection-receipt:{cleaned}", None)


def issue(objection: Objection) -> str:
    """A fresh receipt number for ``objection`` (its hash kept on the row); shown once."""
    code = codes.new_code()
    objection.receipt_hash = digest(code)
    return code


@dataclass(frozen=True)
class ReceiptView:
    received_at: datetime
    status: ObjectionStatus
    status_zh: str
    ruled_at: datetime | None


def lookup(session: Session, campaign_id: int, code: str) -> ReceiptView | None:
    """What the holder of ``code`` may see of the objection, or None for an unknown number."""
    hashed = digest(code)
    if hashed is None:
        return None
    row = session.exec(select(Objection).where(Objection.campaign_id == campaign_id,
                                               Objection.receipt_hash == hashed)).first()
    if row is None:
        return None
    status = ObjectionStatus(row.status)
    return ReceiptView(row.lodged_at, status, STATUS_ZH[status], row.ruled_at)
