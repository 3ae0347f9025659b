"""Downloads of the paper: the applicant's and the committee's filled form, the blank forms and the
notice for everyone (cacheable), with the Chinese filename in Content-Disposition."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import docx
import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from nominations.models import NominationKind
from storage.db import unit_of_work
from tests.factories import create_draft

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _docx_text(content: bytes) -> str:
    document = docx.Document(io.BytesIO(content))
    return "\n".join([p.text for p in document.paragraphs]
                     + [c.text for t in document.tables for r in t.rows for c in r.cells])


@pytest.fixture
def two(engine: Any, campaign: Any, spec: Any) -> tuple[Any, Any]:
    """Two applicants' drafts: a unit's 推荐表 and a self-nomination."""
    with unit_of_work(engine) as session:
        mine = create_draft(session, campaign, spec, kind=NominationKind.UNIT, name="陈工匠", phone="13511112222")
        theirs = create_draft(session, campaign, spec, name="周巧手", phone="13633334444")
        session.expunge_all()
    return mine, theirs


def test_the_applicant_downloads_the_filled_form_by_the_status_link(client: TestClient, two: Any) -> None:
    mine, _ = two
    response = client.get(f"/status/{mine.token}/form.docx")
    assert response.status_code == 200 and response.headers["content-type"] == DOCX
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('附件2-推荐表-陈工匠.docx')}" in disposition
    assert f'filename="form-{mine.id}.docx"' in disposition  # for clients without RFC 5987
    assert response.headers["cache-control"] == "private, no-store"
    text = _docx_text(response.content)
    assert "陈工匠" in text and "13511112222" in text and "（盖章）" in text


def test_the_form_as_pdf(client: TestClient, two: Any) -> None:
    _, theirs = two
    response = client.get(f"/status/{theirs.token}/form.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert quote("附件3-自荐表-周巧手.pdf") in response.headers["content-disposition"]


def test_each_link_opens_its_own_form_only(client: TestClient, two: Any) -> None:
    mine, theirs = two
    text = _docx_text(client.get(f"/status/{theirs.token}/form.docx").content)
    assert "周巧手" in text and "陈工匠" not in text and "13511112222" not in text
    for token in ("not-a-real-token-at-all", mine.token[:-1], mine.token + "x"):
        response = client.get(f"/status/{token}/form.docx")
        assert response.status_code == 404 and "陈工匠" not in response.text
    assert client.get(f"/status/{mine.token}/form.xls").status_code == 404


def test_the_status_page_links_the_forms(client: TestClient, two: Any) -> None:
    mine, _ = two
    page = client.get(f"/status/{mine.token}").text
    assert f"/status/{mine.token}/form.docx" in page and f"/status/{mine.token}/form.pdf" in page


@pytest.mark.parametrize("path", ["/committee/nominations/1/form.docx", "/committee/nominations/1/form.pdf"])
def test_the_committee_form_needs_a_login(client: TestClient, two: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/committee/login")


def test_a_member_downloads_any_nomination_form(as_member: Any, two: Any) -> None:
    mine, theirs = two
    member, _ = as_member("rev", Role.REVIEWER)
    response = member.get(f"/committee/nominations/{theirs.id}/form.docx")
    assert response.status_code == 200 and "周巧手" in _docx_text(response.content)
    assert member.get("/committee/nominations/999999/form.docx").status_code == 404
    assert member.get(f"/committee/nominations/{mine.id}/form.odt").status_code == 404
    page = member.get(f"/committee/nominations/{mine.id}").text
    assert f"/committee/nominations/{mine.id}/form.docx" in page
    assert f"/committee/nominations/{mine.id}/form.pdf" in page


def test_blank_forms_for_everyone_cacheable(client: TestClient) -> None:
    response = client.get("/documents/recommend.docx")
    assert response.status_code == 200 and response.headers["content-type"] == DOCX
    assert quote("附件2-推荐表.docx") in response.headers["content-disposition"]
    assert response.headers["cache-control"].startswith("public, max-age=")
    etag = response.headers["etag"]
    again = client.get("/documents/recommend.docx", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert "签字：" in _docx_text(client.get("/documents/self.docx").content)
    assert "推荐名额（名）" in _docx_text(client.get("/documents/plan.docx").content)
    assert client.get("/documents/self.pdf").content.startswith(b"%PDF")
    for missing in ("/documents/other.docx", "/documents/plan.xls", "/documents/notice.docx"):
        assert client.get(missing).status_code == 404, missing


def test_the_notice_for_everyone(client: TestClient) -> None:
    text = client.get("/documents/notice.txt")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "津人社发〔2021〕36号" in text.text
    pdf = client.get("/documents/notice.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and "etag" in pdf.headers


def test_the_home_page_offers_the_downloads(client: TestClient) -> None:
    page = client.get("/").text
    for path in ("/documents/notice.pdf", "/documents/plan.docx", "/documents/recommend.docx",
                 "/documents/recommend.pdf", "/documents/self.docx", "/documents/self.pdf"):
        assert f'href="{path}"' in page, path
