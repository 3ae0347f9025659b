"""The published tally: at the voting close, with the frozen tally, the anonymised list of every vote
(receipt hash, candidate number, day, valid or the invalidation's category; no voter, address or
time of day) as a CSV file, its SHA-256 and a Merkle root over its rows (``voting.merkle``), recorded
in ``published_tally`` and the audit trail. Never changed afterwards: a vote invalidated later is
a ``tally_correction`` row, published beside it.

The file (UTF-8, ``\\n`` line ends)::

    receipt_hash,candidate,day,status
    0a1f…(64 hex),17,2021-07-01,valid
    -,17,2021-07-02,invalid:automated       (a vote cast before receipts existed has "-")

rows sorted by receipt hash (then candidate, day): the order says nothing about when a vote came.
The file is a pure function of the vote rows, which cannot change after the freeze, so an instance
that lacks it (several instances, a restored backup) rebuilds it and checks it against the
published SHA-256 before serving it.
"""

from __future__ import annotations

import bisect
import hashlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from audit import service as audit
from campaigns.models import Campaign, Stage
from config.settings import Settings, get_settings
from core import clock
from core.actor import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from voting import merkle, receipts
from voting.models import PublishedTally, TallyCorrection, Vote

HEADER = "receipt_hash,candidate,day,status"
#: public categories of an invalidation (the reason itself stays with the committee)
CATEGORIES = {"duplicate": "重复或代他人投票", "automated": "程序或批量刷票", "ineligible": "不符合投票规则",
              "other": "其他原因"}
NO_RECEIPT = "-"


def line(receipt_hash: str | None, candidate: int, day: str, valid: bool, category: str | None) -> str:
    status = "valid" if valid else f"invalid:{category or 'other'}"
    return f"{receipt_hash or NO_RECEIPT},{candidate},{day},{status}"


def folder(campaign_id: int, sha256: str, settings: Settings | None = None) -> Path:
    """Named by its content: two databases beside one data folder (tests, a restore) never collide."""
    return (settings or get_settings()).data_dir / "published" / f"tally-{campaign_id}-{sha256[:16]}"


def _rows(session: Session, campaign_id: int) -> Iterator[tuple[str | None, int, str, bool, str | None]]:
    """The votes as they stood at the publication: a vote corrected since was valid then."""
    key = func.coalesce(Vote.receipt_hash, NO_RECEIPT)
    query = (sa_select(col(Vote.receipt_hash), col(Vote.nomination_id), col(Vote.day), col(Vote.valid),
                       col(Vote.invalid_category), col(TallyCorrection.id))
             .outerjoin(TallyCorrection, col(TallyCorrection.vote_id) == col(Vote.id))
             .where(col(Vote.campaign_id) == campaign_id)
             .order_by(key, col(Vote.nomination_id), col(Vote.day), col(Vote.id)))
    for row in session.execute(query.execution_options(yield_per=5000)):
        corrected = row[5] is not None
        yield row[0], int(row[1]), str(row[2]), bool(row[3]) or corrected, None if corrected else row[4]


@dataclass(frozen=True)
class Built:
    rows: int
    sha256: str
    merkle_root: str
    totals: dict[str, int]


def build(session: Session, campaign_id: int, settings: Settings | None = None) -> tuple[Built, Path]:
    """Write the list, its receipt index and its tree into its folder, streaming."""
    root_folder = (settings or get_settings()).data_dir / "published"
    root_folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tally-", dir=root_folder))
    digest = hashlib.sha256()
    totals: Counter[str] = Counter()
    try:
        with (work / "votes.csv").open("wb") as out, (work / "receipts.bin").open("wb") as index:
            head = (HEADER + "\n").encode()
            out.write(head)
            digest.update(head)

            def leaves() -> Iterator[bytes]:
                for receipt_hash, candidate, day, valid, category in _rows(session, campaign_id):
                    text = line(receipt_hash, candidate, day, valid, category).encode()
                    out.write(text + b"\n")
                    digest.update(text + b"\n")
                    index.write(bytes.fromhex(receipt_hash) if receipt_hash else bytes(32))
                    if valid:
                        totals[str(candidate)] += 1
                    yield merkle.leaf(text)

            root, count = merkle.build(leaves(), work / "tree")
        built = Built(count, digest.hexdigest(), root.hex(), dict(sorted(totals.items(), key=lambda kv: int(kv[0]))))
        target = folder(campaign_id, built.sha256, settings)
        try:
            work.rename(target)
        except OSError:  # built already (same content, same name)
            if not (target / "votes.csv").exists():
                raise
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return built, target


def publish(session: Session, campaign: Campaign, settings: Settings | None = None) -> PublishedTally:
    """Publish the list once (a second call returns the first publication unchanged)."""
    cid = campaign.id or 0
    existing = published(session, cid)
    if existing is not None:
        return existing
    built, _ = build(session, cid, settings)
    row = PublishedTally(campaign_id=cid, rows=built.rows, sha256=built.sha256, merkle_root=built.merkle_root,
                         totals=built.totals, published_at=clock.now())
    session.add(row)
    audit.record(session, actor=Actor.system("ledger"), action="tally_published", subject="votes.csv",
                 campaign_id=cid, data={"rows": built.rows, "sha256": built.sha256,
                                        "merkle_root": built.merkle_root, "totals": built.totals})
    return row


def publish_at_close(session: Session, campaign: Campaign, stage: Stage) -> None:
    """A voting-close listener, after the freeze."""
    publish(session, campaign)


def published(session: Session, campaign_id: int) -> PublishedTally | None:
    return session.exec(select(PublishedTally).where(PublishedTally.campaign_id == campaign_id)).first()


def files(session: Session, campaign_id: int, settings: Settings | None = None) -> tuple[PublishedTally, Path]:
    """The publication and its folder, rebuilt here if this instance lacks it; refuses to serve a
    folder whose file does not hash to what was published."""
    row = published(session, campaign_id)
    if row is None:
        raise NotFound("the vote list is published at the voting close", message_zh="投票截止后才公布投票明细")
    target = folder(campaign_id, row.sha256, settings)
    if not (target / "votes.csv").exists():
        built, target = build(session, campaign_id, settings)
        if built.sha256 != row.sha256:
            raise Conflict("the rebuilt vote list differs from the published one: the vote rows were changed",
                           message_zh="重建的投票明细与已公布的不一致，请联系组委会办公室")
    return row, target


def _index_of(target: Path, count: int, receipt_hash: str) -> int | None:
    """Binary search of the sorted receipt index (32 bytes a row)."""
    wanted = bytes.fromhex(receipt_hash)
    with (target / "receipts.bin").open("rb") as f:

        class _Keys:
            def __len__(self) -> int:
                return count

            def __getitem__(self, i: int) -> bytes:
                f.seek(i * 32)
                return f.read(32)

        i = bisect.bisect_left(_Keys(), wanted)
        return i if i < count and _Keys()[i] == wanted else None


def _line_at(target: Path, index: int) -> str:
    with (target / "votes.csv").open("rb") as f:
        f.readline()
        for i, raw in enumerate(f):
            if i == index:
                return raw.rstrip(b"\n").decode()
    raise IndexError(index)


def inclusion_proof(session: Session, campaign_id: int, receipt_hash: str,
                    settings: Settings | None = None) -> dict[str, object]:
    """The receipt's row, its place and the partners up to the published root."""
    cleaned = receipt_hash.strip().lower()
    if len(cleaned) != 64 or any(ch not in "0123456789abcdef" for ch in cleaned):
        raise ValidationFailed("receipt_hash must be 64 hex digits", message_zh="回执哈希应为64位十六进制")
    row, target = files(session, campaign_id, settings)
    index = _index_of(target, row.rows, cleaned)
    if index is None:
        raise NotFound("no such receipt in the published list", message_zh="公布的投票明细中没有该回执")
    text = _line_at(target, index)
    path = merkle.proof(target / "tree", row.rows, index)
    return {"index": index, "row": text, "leaf": merkle.leaf(text.encode()).hex(), "path": path,
            "merkle_root": row.merkle_root, "rows": row.rows, "sha256": row.sha256}


def corrections(session: Session, campaign_id: int) -> list[TallyCorrection]:
    return list(session.exec(select(TallyCorrection).where(TallyCorrection.campaign_id == campaign_id)
                             .order_by(col(TallyCorrection.id))))


def correct(session: Session, vote_id: int, *, actor: Actor, category: str, reason: str) -> TallyCorrection:
    """Invalidate a vote after the list was published: the vote is marked, the list and the frozen
    tally stay as published, and a correction is published beside them (audited)."""
    if category not in CATEGORIES:
        raise ValidationFailed(f"category must be one of {', '.join(CATEGORIES)}", message_zh="作废类别无效")
    if not reason.strip():
        raise ValidationFailed("a reason is required", message_zh="请填写作废理由")
    vote = session.get(Vote, vote_id)
    if vote is None:
        raise NotFound(f"no vote {vote_id}", message_zh="未找到该投票记录")
    if published(session, vote.campaign_id) is None:
        raise Conflict("the list is not published yet: invalidate the vote instead", message_zh="投票明细尚未公布")
    if not vote.valid:
        raise Conflict(f"vote {vote_id} is already invalid", message_zh="该票已作废")
    now = clock.now()
    vote.valid, vote.invalidated_at, vote.invalidated_by = False, now, str(actor)
    vote.invalid_reason, vote.invalid_category = reason.strip(), category
    session.add(vote)
    fix = TallyCorrection(campaign_id=vote.campaign_id, vote_id=vote_id, receipt_hash=vote.receipt_hash or NO_RECEIPT,
                          nomination_id=vote.nomination_id, day=vote.day, category=category, published_at=now)
    session.add(fix)
    audit.record(session, actor=actor, action="tally_corrected", subject=f"vote:{vote_id}", reason=reason,
                 campaign_id=vote.campaign_id, data={"receipt_hash": fix.receipt_hash, "candidate": vote.nomination_id,
                                                     "day": vote.day, "category": category})
    return fix


@dataclass(frozen=True)
class ReceiptStatus:
    status: str  # counted | invalidated | unknown
    category: str | None = None


def receipt_status(session: Session, code: str) -> ReceiptStatus:
    """What the receipt page says: counted, invalidated (with the category), or unknown."""
    digest = receipts.public_hash(code)
    if digest is None:
        raise ValidationFailed("not a receipt code", message_zh="回执码格式不正确（12位字母数字）")
    vote = session.exec(select(Vote).where(Vote.receipt_hash == digest)).first()
    if vote is None:
        return ReceiptStatus("unknown")
    if vote.valid:
        return ReceiptStatus("counted")
    return ReceiptStatus("invalidated", vote.invalid_category or "other")
