"""公开透明 over HTTP: the page before and after the publication, the file, the inclusion proof,
the receipt lookup (JSON and the page); bad input is a 4xx with a Chinese message."""

from __future__ import annotations

import hashlib

import pytest

from nominations.states import State
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.factories import create_nomination
from tests.voting.test_publication import _close, _votes, verify_tally
from voting import receipts


@pytest.fixture
def candidates(engine, campaign, spec, clock) -> list[int]:
    with unit_of_work(engine) as session:
        ids = [create_nomination(session, campaign, spec, State.SHORTLISTED, name=f"候选人{i}").id for i in range(3)]
    clock.set(beijing(2021, 7, 2, 9, 0))
    return [int(i or 0) for i in ids]


def test_the_page_before_the_publication(client):
    page = client.get("/transparency")
    assert page.status_code == 200
    assert "投票明细将在网络投票截止时公布" in page.text and "哪些内容不公开" in page.text
    assert "当前链头" in page.text and 'href="/transparency"' in client.get("/notice").text
    missing = client.get("/transparency/votes.csv")
    assert missing.status_code == 404 and "投票截止后才公布" in missing.text


def test_published_file_proof_and_receipts(client, engine, campaign, candidates, clock, web_settings):
    codes = _votes(engine, campaign, candidates, clock)
    clock.set(beijing(2021, 7, 11, 0, 0))
    row = _close(engine, campaign, web_settings)
    page = client.get("/transparency")
    assert row.sha256 in page.text and row.merkle_root in page.text
    commitment = client.get("/api/transparency").json()
    assert commitment["tally"]["merkle_root"] == row.merkle_root and commitment["chain_head"]["chain_seq"] > 0
    file = client.get("/transparency/votes.csv")
    assert file.status_code == 200 and hashlib.sha256(file.content).hexdigest() == row.sha256
    code = list(codes)[4]
    proof = client.get("/api/transparency/proof", params={"receipt_hash": receipts.public_hash(code)}).json()
    assert verify_tally.root_from_proof(proof["row"].encode(), proof["path"]).hex() == row.merkle_root
    bad = client.get("/api/transparency/proof", params={"receipt_hash": "zz"})
    assert bad.status_code == 422 and "十六进制" in bad.json()["detail_zh"]
    assert client.get("/api/transparency/proof", params={"receipt_hash": "0" * 64}).status_code == 404
    lookup = client.post("/api/receipts/lookup", json={"code": code}).json()
    assert lookup == {"status": "counted", "status_zh": "已计入", "category": None, "category_zh": None}
    invalid = client.post("/api/receipts/lookup", json={"code": list(codes)[1]}).json()
    assert (invalid["status"], invalid["category_zh"]) == ("invalidated", "重复或代他人投票")
    assert client.post("/api/receipts/lookup", json={"code": receipts.new_code()}).json()["status"] == "unknown"
    wrong = client.post("/api/receipts/lookup", json={"code": "abc"})
    assert wrong.status_code == 422 and "回执码格式不正确" in wrong.json()["detail_zh"]
    form = client.post("/receipt", data={"code": code})
    assert form.status_code == 200 and "该票已计入" in form.text and "候选人" not in form.text.split("<main>")[1]
    assert client.post("/receipt", data={"code": "x"}).status_code == 422
    script = client.get("/transparency/verify_tally.py")
    assert script.status_code == 200 and "def root_of" in script.text
