"""The published tally: the file recounts to the frozen tally, carries nothing about the voter, a
receipt's inclusion proof verifies against the published root and a tampered row fails it, the
publication never changes (a later invalidation is a correction), receipts are looked up."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert
from sqlmodel import select

from audit.models import AuditEvent
from campaigns import service as campaigns
from campaigns.models import Campaign
from config.campaign import StageName
from config.settings import Settings
from core.actor import Actor
from core.clock import ManualClock
from core.errors import NotFound, ValidationFailed
from storage.db import unit_of_work
from tests.conftest import beijing
from voting import publication, receipts, tally
from voting.models import FrozenTally, PublishedTally, TallyCorrection, Vote, VoterIdentity

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_tally.py"
_spec = importlib.util.spec_from_file_location("verify_tally", TOOL)
assert _spec and _spec.loader
verify_tally = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify_tally)


def _votes(engine: Engine, campaign: Campaign, candidates: list[int], clock: ManualClock) -> dict[str, int]:
    """40 votes over two days on three candidates, three of them invalidated; returns code -> vote id."""
    cid = campaign.id or 0
    codes: dict[str, int] = {}
    with unit_of_work(engine) as session:
        voters = [VoterIdentity(campaign_id=cid, kind="email", identity_hash=f"pub{i}", created_at=clock.now(),
                                created_minute=0) for i in range(20)]
        session.add_all(voters)
        session.flush()
        for i in range(40):
            code = receipts.new_code()
            vote_id = session.execute(insert(Vote).returning(Vote.id), {
                "campaign_id": cid, "nomination_id": candidates[i % 3], "voter_id": voters[i % 20].id,
                "day": "2021-07-02" if i < 20 else "2021-07-03", "slot": 1, "cast_at": clock.now(), "minute": 1,
                "ip_hash": "secret-ip-hash", "net_hash": "secret-net-hash", "valid": True,
                "receipt_hash": receipts.public_hash(code)}).scalar_one()
            codes[code] = vote_id
    for code, category in zip(list(codes)[:3], ("automated", "duplicate", "automated"), strict=True):
        with unit_of_work(engine) as session:
            tally.invalidate(session, codes[code], actor=Actor.system("office"), reason="同一设备批量投票",
                             category=category)
    return codes


def _close(engine: Engine, campaign: Campaign, settings: Settings) -> PublishedTally:
    with unit_of_work(engine) as session:
        stage = campaigns.get_stage(session, campaign.id or 0, StageName.VOTING)
        tally.freeze(session, campaign, stage)
        return publication.publish(session, campaign, settings)


@pytest.fixture
def published(engine, campaign, candidates, clock, settings):
    codes = _votes(engine, campaign, candidates, clock)
    clock.set(beijing(2021, 7, 11, 0, 0))
    row = _close(engine, campaign, settings)
    with unit_of_work(engine, readonly=True) as session:
        _, folder = publication.files(session, campaign.id or 0, settings)
    return codes, row, folder / "votes.csv"


def test_the_file_recounts_to_the_frozen_tally(engine, campaign, published):
    codes, row, path = published
    sha, root, count, totals, invalid, _ = verify_tally.scan(str(path), None)
    with unit_of_work(engine, readonly=True) as session:
        frozen = {f.nomination_id: f.votes for f in session.exec(select(FrozenTally))}
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "tally_published")).one()
    assert {n: v for n, v in frozen.items() if v} == dict(totals)
    assert sum(totals.values()) == 37 and dict(invalid) == {"automated": 2, "duplicate": 1}
    assert (sha, root, count) == (row.sha256, row.merkle_root, 40)
    assert event.data["sha256"] == sha and event.data["merkle_root"] == root


def test_the_file_says_nothing_about_the_voter(published):
    codes, _, path = published
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "receipt_hash,candidate,day,status" and len(lines) == 41
    assert "secret" not in text and "T" not in text.replace("valid", "")  # no address hash, no time of day
    hashes = [line.split(",")[0] for line in lines[1:]]
    assert hashes == sorted(hashes)  # sorted by receipt: the order tells nothing about when
    assert {receipts.public_hash(code) for code in codes} == set(hashes)


def test_an_inclusion_proof_verifies_and_a_tampered_row_fails_it(engine, campaign, published, settings, tmp_path):
    codes, row, _ = published
    code = list(codes)[7]
    with unit_of_work(engine, readonly=True) as session:
        proof = publication.inclusion_proof(session, campaign.id or 0, receipts.public_hash(code) or "", settings)
    assert proof["row"].startswith(receipts.public_hash(code) + ",")
    assert verify_tally.root_from_proof(proof["row"].encode(), proof["path"]).hex() == row.merkle_root
    receipt, candidate, day, status = proof["row"].split(",")
    for forged in (f"{receipt},{int(candidate) + 1},{day},{status}", f"{receipt},{candidate},{day},invalid:other"):
        assert verify_tally.root_from_proof(forged.encode(), proof["path"]).hex() != row.merkle_root
    saved = tmp_path / "proof.json"
    saved.write_text(json.dumps(proof))
    good = subprocess.run([sys.executable, str(TOOL), "--proof", str(saved), "--receipt", code,
                           "--root", row.merkle_root], capture_output=True, text=True)
    assert good.returncode == 0 and "MATCHES" in good.stdout
    saved.write_text(json.dumps({**proof, "row": forged}))
    bad = subprocess.run([sys.executable, str(TOOL), "--proof", str(saved), "--root", row.merkle_root],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "DOES NOT MATCH" in bad.stdout
    with unit_of_work(engine, readonly=True) as session, pytest.raises(NotFound):
        publication.inclusion_proof(session, campaign.id or 0, "ab" * 32, settings)
    with unit_of_work(engine, readonly=True) as session, pytest.raises(ValidationFailed):
        publication.inclusion_proof(session, campaign.id or 0, "not-hex", settings)


def test_the_script_recounts_a_downloaded_file_and_catches_an_edit(published, tmp_path):
    codes, row, path = published
    args = [sys.executable, str(TOOL), str(path), "--sha256", row.sha256, "--root", row.merkle_root,
            "--receipt", list(codes)[5]]
    ok = subprocess.run(args, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "your receipt: line" in ok.stdout and f"merkle_root: {row.merkle_root}" in ok.stdout
    edited = tmp_path / "edited.csv"
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if i >= 1 and line.endswith(",valid"))  # receipts are random
    lines[at] = lines[at].removesuffix(",valid") + ",invalid:other"
    edited.write_text("\n".join(lines) + "\n")
    bad = subprocess.run([*args[:2], str(edited), *args[3:]], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout.count("DOES NOT MATCH") == 2


def test_the_publication_never_changes_and_a_late_invalidation_is_a_correction(engine, campaign, published,
                                                                             settings, clock):
    codes, row, path = published
    before = path.read_bytes()
    code = list(codes)[10]
    with unit_of_work(engine) as session:
        fix = publication.correct(session, codes[code], actor=Actor.system("office"), category="ineligible",
                                  reason="核实为同一人多号投票")
    again = _close(engine, campaign, settings)
    assert (again.id, again.sha256, again.merkle_root) == (row.id, row.sha256, row.merkle_root)
    shutil.rmtree(path.parent)  # an instance without the files rebuilds the very same ones
    with unit_of_work(engine, readonly=True) as session:
        _, rebuilt = publication.files(session, campaign.id or 0, settings)
        listed = publication.corrections(session, campaign.id or 0)
        status = publication.receipt_status(session, code)
    assert (rebuilt / "votes.csv").read_bytes() == before
    assert [(c.receipt_hash, c.category) for c in listed] == [(receipts.public_hash(code), "ineligible")]
    assert isinstance(fix, TallyCorrection) and status == publication.ReceiptStatus("invalidated", "ineligible")


def test_receipt_lookup_counted_invalidated_unknown(engine, campaign, published):
    codes, _, _ = published
    first, counted = list(codes)[0], list(codes)[20]
    with unit_of_work(engine, readonly=True) as session:
        assert publication.receipt_status(session, counted) == publication.ReceiptStatus("counted")
        assert publication.receipt_status(session, counted.lower().replace("-", " ")).status == "counted"
        assert publication.receipt_status(session, first) == publication.ReceiptStatus("invalidated", "automated")
        assert publication.receipt_status(session, receipts.new_code()) == publication.ReceiptStatus("unknown")
        with pytest.raises(ValidationFailed):
            publication.receipt_status(session, "12345")


def test_the_merkle_tree_matches_the_scripts_streaming_root(tmp_path):
    from voting import merkle

    for n in (0, 1, 2, 3, 5, 8, 13, 100):
        lines = [f"row{i}".encode() for i in range(n)]
        root, count = merkle.build((merkle.leaf(x) for x in lines), tmp_path / f"t{n}")
        assert (root, count) == verify_tally.root_of(merkle.leaf(x) for x in lines)
        for i in range(n):
            assert merkle.root_from(lines[i], merkle.proof(tmp_path / f"t{n}", n, i)) == root
