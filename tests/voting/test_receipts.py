"""Receipts through the real vote path (the service and, on PostgreSQL, the vote lane): an accepted
vote answers with a receipt code; only its public hash is stored, on the vote row, tied to no
identity; the lookup says counted, invalidated with the category, or unknown."""

from __future__ import annotations

from sqlmodel import select

from core.actor import Actor
from storage.db import unit_of_work
from voting import publication, receipts, tally
from voting.models import Vote


def test_a_vote_answers_with_a_receipt_that_looks_up(engine, campaign, candidates, cast, verified, settings):
    voter = verified("receipt@example.cn")
    first = cast(campaign.id or 0, candidates[0], voter, "10.2.2.2", settings)
    second = cast(campaign.id or 0, candidates[1], voter, "10.2.2.2", settings)
    assert receipts.normalise(first.receipt_code) and first.receipt_code != second.receipt_code
    with unit_of_work(engine, readonly=True) as session:
        row = session.exec(select(Vote).where(Vote.id == first.vote_id)).one()
        assert row.receipt_hash == receipts.public_hash(first.receipt_code)
        assert first.receipt_code.replace("-", "") not in str(row.model_dump())  # the code itself is not kept
        assert publication.receipt_status(session, first.receipt_code).status == "counted"
        assert publication.receipt_status(session, receipts.new_code()).status == "unknown"
    with unit_of_work(engine) as session:
        tally.invalidate(session, second.vote_id, actor=Actor.system("office"), reason="批量", category="automated")
    with unit_of_work(engine, readonly=True) as session:
        assert publication.receipt_status(session, second.receipt_code) == publication.ReceiptStatus(
            "invalidated", "automated")
