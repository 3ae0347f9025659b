"""公开透明: what anyone can check. The transparency page (the trail's head, the published vote list
with its SHA-256 and Merkle root, corrections, how to recount), the receipt lookup, the file and a
receipt's inclusion proof. Every rule lives in ``voting.publication`` and ``audit.chain``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from audit import chain
from core.errors import JingongError
from voting import publication
from web.deps import CampaignDep, SessionDep, SettingsDep
from web.errors import message_zh, status_of
from web.schemas import Str32
from web.templating import render
from wiring import ledger

router = APIRouter()
VERIFIER = Path(__file__).resolve().parents[1] / "tools" / "verify_tally.py"
STATUS_ZH = {"counted": "已计入", "invalidated": "已作废", "unknown": "未找到"}


class ReceiptLookup(BaseModel):
    code: Str32


def _commitment(session: SessionDep, campaign_id: int) -> dict[str, Any]:
    head = chain.head(session, campaign_id)
    row = publication.published(session, campaign_id)
    return {
        "chain_head": {"chain_seq": head.seq, "head_hash": head.hash},
        "published_heads": [{"at": e.at.isoformat(), "occasion": e.subject, **e.data}
                            for e in ledger.last_published(session, campaign_id, limit=30)],
        "tally": None if row is None else {
            "rows": row.rows, "sha256": row.sha256, "merkle_root": row.merkle_root, "totals": row.totals,
            "published_at": row.published_at.isoformat(), "file": "/transparency/votes.csv"},
        "corrections": [{"receipt_hash": c.receipt_hash, "candidate": c.nomination_id, "day": c.day,
                         "category": c.category, "published_at": c.published_at.isoformat()}
                        for c in publication.corrections(session, campaign_id)],
    }


@router.get("/transparency", include_in_schema=False)
def transparency_page(request: Request, session: SessionDep, campaign: CampaignDep) -> Response:
    c = _commitment(session, campaign.id or 0)
    # the page shows Beijing time (the API keeps ISO 8601 UTC)
    for item in [c["tally"] or {}, *c["published_heads"], *c["corrections"]]:
        for key in ("published_at", "at"):
            if key in item:
                item[key] = datetime.fromisoformat(item[key])
    return render(request, "public/transparency.html", {"campaign": campaign, "c": c,
                                                        "categories": publication.CATEGORIES})


@router.get("/api/transparency")
def transparency_api(session: SessionDep, campaign: CampaignDep) -> dict[str, Any]:
    """The trail's head, the heads published so far, the vote list's commitment and its corrections."""
    return _commitment(session, campaign.id or 0)


@router.get("/transparency/votes.csv", include_in_schema=False)
def votes_file(session: SessionDep, campaign: CampaignDep, settings: SettingsDep) -> Response:
    row, folder = publication.files(session, campaign.id or 0, settings)
    return FileResponse(folder / "votes.csv", media_type="text/csv; charset=utf-8",
                        filename=f"votes-{row.sha256[:16]}.csv")


@router.get("/transparency/verify_tally.py", include_in_schema=False)
def verifier_script() -> Response:
    """The dependency-free verifier (tools/verify_tally.py), to run at home."""
    return FileResponse(VERIFIER, media_type="text/x-python; charset=utf-8", filename="verify_tally.py")


@router.get("/api/transparency/proof")
def proof_api(session: SessionDep, campaign: CampaignDep, settings: SettingsDep,
              receipt_hash: str = Query(..., max_length=64)) -> dict[str, object]:
    """A receipt's row in the published list and its inclusion proof up to the published Merkle root."""
    return publication.inclusion_proof(session, campaign.id or 0, receipt_hash, settings)


@router.post("/api/receipts/lookup")
def receipt_api(body: ReceiptLookup, session: SessionDep) -> dict[str, str | None]:
    """Counted, invalidated (with its public category) or unknown: nothing else."""
    found = publication.receipt_status(session, body.code)
    return {"status": found.status, "status_zh": STATUS_ZH[found.status], "category": found.category,
            "category_zh": publication.CATEGORIES.get(found.category or "")}


@router.get("/receipt", include_in_schema=False)
def receipt_page(request: Request, campaign: CampaignDep) -> Response:
    return render(request, "public/receipt.html", {"campaign": campaign})


@router.post("/receipt", include_in_schema=False)
async def receipt_post(request: Request, session: SessionDep, campaign: CampaignDep) -> Response:
    """A lookup changes nothing: no CSRF token needed; POST keeps the code out of addresses and logs."""
    form = await request.form()
    code = form.get("code")
    code = code[:32] if isinstance(code, str) else ""
    try:
        found = publication.receipt_status(session, code)
    except JingongError as exc:
        return render(request, "public/receipt.html", {"campaign": campaign, "error": message_zh(exc)},
                      status_code=status_of(exc))
    return render(request, "public/receipt.html", {
        "campaign": campaign, "status": found.status, "status_zh": STATUS_ZH[found.status],
        "category_zh": publication.CATEGORIES.get(found.category or "")})
