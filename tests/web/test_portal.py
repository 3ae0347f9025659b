"""The applicant portal pages: both forms, drafts by link, missing fields, deadline, uploads."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from campaigns import service as campaigns
from core.clock import ManualClock
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.web.conftest import png_bytes


@pytest.fixture
def engine(sqlite_engine: Any) -> Any:
    return sqlite_engine


SELF_FORM = {
    "name": "赵师傅", "sex": "男", "ethnicity": "汉族", "birth_date": "1970-03-04", "education": "高中",
    "political_status": "群众", "employer": "江津某厂", "position": "班组长", "technical_grade": "技师",
    "years_of_service": "30", "phone": "13800138000", "applicant_email": "zhao@example.cn",
    "honours": "技术能手", "achievements": "革新工艺", "deeds": "三十年如一日", "priority_conditions": ["P1", "P5"],
    "applicant_signature": "赵师傅", "applicant_signed_date": "2021-05-01",
}


def test_both_forms_have_every_field(client: TestClient) -> None:
    unit = client.get("/apply/unit").text
    own = client.get("/apply/self").text
    for field in ("name", "sex", "ethnicity", "birth_date", "education", "political_status", "employer", "position",
                  "technical_grade", "years_of_service", "phone", "honours", "achievements", "deeds",
                  "priority_conditions"):
        assert f'name="{field}"' in unit and f'name="{field}"' in own
    assert 'name="unit_opinion"' in unit and 'name="unit_seal_confirmed"' in unit and 'name="unit_id"' in unit
    assert 'name="applicant_signature"' in own and 'name="unit_opinion"' not in own
    assert "高级技师" in unit and "2021年5月31日 18:00" in unit


def test_save_draft_come_back_and_submit(client: TestClient) -> None:
    response = client.post("/apply/self", data={"name": "赵师傅", "action": "save"})
    assert response.status_code == 303
    link = response.headers["location"].split("?")[0]
    page = client.get(link).text
    assert "草稿" in page and 'value="赵师傅"' in page
    assert "请填写“联系电话”" in page and "请填写“主要事迹”" in page  # what is missing, listed
    assert "请上传一寸近期免冠照片" in page  # the photo is required to submit
    client.post(f"{link}/attachments", data={"kind": "photo"}, files={"file": ("p.png", png_bytes(), "image/png")})
    submitted = client.post(link, data=SELF_FORM | {"action": "submit"})
    assert submitted.status_code == 303 and submitted.headers["location"] == link
    after = client.get(link).text
    assert "申报已提交，谢谢！" in after and "已提交" in after and "提交申报" in after and 'name="action"' not in after


def test_submit_with_missing_fields_shows_which(client: TestClient) -> None:
    data = dict(SELF_FORM)
    del data["phone"], data["deeds"]
    response = client.post("/apply/self", data=data | {"action": "submit"})
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert "请填写“联系电话”" in page and "请填写“主要事迹”" in page
    assert "请填写“民族”" not in page


def test_bad_values_are_shown_on_the_form(client: TestClient) -> None:
    response = client.post("/apply/self", data=SELF_FORM | {"deeds": "字" * 501, "action": "save"})
    assert response.status_code == 422 and "不得超过500字" in response.text
    assert 'value="赵师傅"' in response.text  # what was typed is kept
    bad_date = client.post("/apply/self", data=SELF_FORM | {"birth_date": "1970-13-45", "action": "save"})
    assert bad_date.status_code == 422 and "出生日期" in bad_date.text


def test_unit_form_lists_units_and_submits(client: TestClient, engine: Any, campaign: Any) -> None:
    with unit_of_work(engine, readonly=True) as session:
        unit = campaigns.list_units(session, campaign.id)[0]
    data = {k: v for k, v in SELF_FORM.items() if not k.startswith("applicant_s")}
    data |= {"unit_id": str(unit.id), "unit_opinion": "同意推荐", "unit_opinion_date": "2021-05-02",
             "unit_seal_confirmed": "on", "action": "submit"}
    response = client.post("/apply/unit", data=data)
    link = response.headers["location"].split("?")[0]
    page = client.get(link).text  # saved; a new form has no photo yet
    assert "草稿已保存，还不能提交" in page and "请上传一寸近期免冠照片" in page
    client.post(f"{link}/attachments", data={"kind": "photo"}, files={"file": ("p.png", png_bytes(), "image/png")})
    client.post(link, data=data)
    page = client.get(link).text
    assert "申报已提交，谢谢！" in page and unit.name in page


def test_editing_stops_at_the_deadline(client: TestClient, clock: ManualClock) -> None:
    link = client.post("/apply/self", data={"name": "迟到者"}).headers["location"].split("?")[0]
    clock.set(beijing(2021, 5, 31, 18, 0, 1))
    page = client.get(link).text
    assert "推荐申报已于北京时间2021年5月31日 18:00:00截止" in page and 'name="action"' not in page
    refused = client.post(link, data=SELF_FORM | {"action": "submit"})
    assert refused.status_code == 422 and "2021年5月31日 18:00:00" in refused.text
    assert client.post("/apply/self", data=SELF_FORM).status_code == 422


def test_status_page_shows_countdown(client: TestClient) -> None:
    link = client.post("/apply/self", data={"name": "甲"}).headers["location"].split("?")[0]
    page = client.get(link).text
    # 2021-05-01 10:00 to 2021-05-31 18:00 Beijing
    assert f'data-seconds="{30 * 86400 + 8 * 3600}"' in page


def test_html_upload_and_errors(client: TestClient, web_settings: Any) -> None:
    link = client.post("/apply/self", data={"name": "甲"}).headers["location"].split("?")[0]
    ok = client.post(f"{link}/attachments", data={"kind": "photo"},
                     files={"file": ("我.png", png_bytes(), "image/png")})
    assert ok.status_code == 303
    page = client.get(link).text
    assert "我.png" in page and "（当前照片）" in page
    wrong = client.post(f"{link}/attachments", data={"kind": "award"}, files={"file": ("a.pdf", b"hello", "x/y")})
    assert wrong.status_code == 415 and "类型" in wrong.text
    big = client.post(f"{link}/attachments", data={"kind": "award"},
                      files={"file": ("b.png", png_bytes(padding=web_settings.upload_max_bytes), "image/png")})
    assert big.status_code == 413 and "大小限制" in big.text


def test_unknown_link_is_404_in_chinese(client: TestClient) -> None:
    response = client.get("/status/not-a-real-token-at-all")
    assert response.status_code == 404 and "未找到" in response.text
    assert client.get("/apply/other").status_code == 404


def test_home_page(client: TestClient) -> None:
    html = client.get("/").text
    assert "江津区第三届" in html and "推荐申报" in html and "/calendar.ics" in html
