"""Issue 15, item 2: the standard lists (民族 GB/T 3304, 文化程度 GB/T 4658, 政治面貌 GB/T 4762) on the
page and in the API, the photo before submitting, no draft from an empty form, length limits in
the browser and the server, each error at its field and once in the summary."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from nominations.choices import EDUCATION_LEVELS, ETHNICITIES, POLITICAL_STATUSES
from tests.web.conftest import png_bytes
from tests.web.test_api import form_json

SELF_FORM = {
    "name": "赵师傅", "sex": "男", "ethnicity": "汉族", "birth_date": "1970-03-04", "education": "高中",
    "political_status": "群众", "employer": "江津某厂", "position": "班组长", "technical_grade": "技师",
    "years_of_service": "30", "phone": "13800138000", "applicant_email": "zhao@example.cn",
    "honours": "技术能手", "achievements": "革新工艺", "deeds": "三十年如一日", "priority_conditions": ["P1"],
    "applicant_signature": "赵师傅", "applicant_signed_date": "2021-05-01",
}


def test_the_lists_follow_the_standards() -> None:
    assert len(ETHNICITIES) == 58 and len(set(ETHNICITIES)) == 58
    assert ETHNICITIES[:3] == ("汉族", "蒙古族", "回族") and ETHNICITIES[55] == "基诺族"
    assert ETHNICITIES[-2:] == ("其他", "外国血统中国籍人士")
    assert EDUCATION_LEVELS[0] == "研究生" and "大学专科" in EDUCATION_LEVELS and "技工学校" in EDUCATION_LEVELS
    assert POLITICAL_STATUSES[0] == "中共党员" and POLITICAL_STATUSES[-1] == "群众" and len(POLITICAL_STATUSES) == 13


def test_the_form_offers_the_lists_and_real_length_limits(client: TestClient) -> None:
    page = client.get("/apply/self").text
    for field, values in (("ethnicity", ETHNICITIES), ("education", EDUCATION_LEVELS),
                          ("political_status", POLITICAL_STATUSES)):
        select = re.search(rf'<select name="{field}".*?</select>', page, re.S)
        assert select, field
        assert re.findall(r"<option>(.*?)</option>", select.group(0)) == list(values)
    assert 'maxlength="64"' in page and "&#34;" not in page  # the escaping bug: maxlength=&#34;64&#34;
    assert '<input type="text" name="name" value="" maxlength="64" required id="f-name">' in page
    assert 'name="deeds" rows="8" data-max="500" maxlength="500"' in page


@pytest.mark.parametrize("field, value", [("ethnicity", "汉"), ("education", "大专"), ("political_status", "党员")])
def test_a_value_off_the_list_is_refused_by_the_api(client: TestClient, field: str, value: str) -> None:
    response = client.post("/api/nominations", json=form_json() | {field: value})
    assert response.status_code == 422
    body = response.json()
    assert field in body["detail"] and "请从列表中选择" in body["detail_zh"]
    ok = client.post("/api/nominations", json=form_json() | {field: {"ethnicity": "土家族", "education": "技工学校",
                                                                     "political_status": "无党派人士"}[field]})
    assert ok.status_code == 201


def test_too_long_is_refused_by_the_api_and_the_page(client: TestClient) -> None:
    response = client.post("/api/nominations", json=form_json() | {"name": "名" * 65})
    assert response.status_code == 422 and "name" in response.text
    page = client.post("/apply/self", data=SELF_FORM | {"name": "名" * 65, "action": "save"})
    assert page.status_code == 422 and "“姓名”填写有误：不得超过64字" in page.text
    assert 'value="' + "名" * 65 + '"' in page.text  # what was typed is kept


def test_an_empty_form_saves_no_draft(client: TestClient) -> None:
    before = client.get("/api/campaign").json()["counts"]["draft"]
    page = client.post("/apply/self", data={"name": "  ", "phone": "", "action": "save"})
    assert page.status_code == 422 and "请至少填写“姓名”再保存草稿" in page.text
    submit = client.post("/apply/unit", data={"action": "submit"})
    assert submit.status_code == 422
    api = client.post("/api/nominations", json={"kind": "self"})
    assert api.status_code == 422 and "name" in api.json()["detail"]
    assert client.get("/api/campaign").json()["counts"]["draft"] == before


def test_each_error_at_its_field_and_once_in_the_summary(client: TestClient) -> None:
    page = client.post("/apply/self", data=SELF_FORM | {"phone": "12345", "ethnicity": "火星族", "action": "save"})
    assert page.status_code == 422
    html = page.text
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)  # type: ignore[union-attr]
    assert 'href="#f-phone"' in summary and 'href="#f-ethnicity"' in summary
    assert re.search(r'name="phone"[^>]*aria-invalid="true" aria-describedby="e-phone"', html)
    assert re.search(r'name="ethnicity"[^>]*aria-invalid="true" aria-describedby="e-ethnicity"', html)
    assert '<span class="field-error" id="e-phone">联系电话格式不正确' in html
    assert html.count("联系电话格式不正确") == 2  # once in the summary, once at the field
    assert 'aria-invalid="true"' not in html.split('name="name"')[1].split(">")[0]  # a good field is not marked


def test_the_photo_is_required_to_submit_not_to_save(client: TestClient) -> None:
    saved = client.post("/apply/self", data=SELF_FORM | {"action": "save"})
    link = saved.headers["location"].split("?")[0]
    refused = client.post(link, data=SELF_FORM | {"action": "submit"})
    assert refused.status_code == 422 and "草稿已保存，但还不能提交" in refused.text
    assert 'href="#upload-file"' in refused.text and 'id="e-photo"' in refused.text
    assert refused.text.count("请上传一寸近期免冠照片") == 2  # the summary and the upload field
    token = link.rsplit("/", 1)[1]
    assert client.get(f"/api/nominations/{token}").json()["state"] == "draft"
    api = client.post(f"/api/nominations/{token}/submit")
    assert api.status_code == 422 and "photo" in api.json()["detail"] and "照片" in api.json()["detail_zh"]
    client.post(f"{link}/attachments", data={"kind": "photo"}, files={"file": ("p.png", png_bytes(), "image/png")})
    assert 'class="photo-preview"' in client.get(link).text
    done = client.post(link, data=SELF_FORM | {"action": "submit"})
    assert done.status_code == 303
    assert client.get(f"/api/nominations/{token}").json()["state"] == "submitted"
