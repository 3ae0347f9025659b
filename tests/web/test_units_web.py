"""The office's list of units (/committee/units) and a unit's own page (/unit/{token}), on both
databases: quota use per town, add and edit with what was typed kept on a refusal, the unit link
showing only its own nominations, a wrong link a 404."""

from __future__ import annotations

import io
import re
from typing import Any

import docx  # python-docx
from sqlmodel import select

from accounts.models import Role
from audit.models import AuditEvent
from campaigns import units
from campaigns.models import NominatingUnit
from nominations.models import NominationKind
from nominations.states import State
from storage.db import unit_of_work
from tests.factories import create_nomination


def _unit(engine: Any, campaign: Any, name: str) -> NominatingUnit:
    with unit_of_work(engine, readonly=True) as session:
        return session.exec(select(NominatingUnit).where(NominatingUnit.campaign_id == campaign.id,
                                                         NominatingUnit.name == name)).one()


def _nominate(engine: Any, campaign: Any, spec: Any, unit: NominatingUnit, state: State, name: str) -> int:
    with unit_of_work(engine) as session:
        n = create_nomination(session, campaign, spec, state, kind=NominationKind.UNIT, unit_id=unit.id, name=name)
        return n.id or 0


def test_the_unit_page_shows_its_own_nominations_and_quota(client: Any, engine: Any, campaign: Any,
                                                           spec: Any) -> None:
    town, other = _unit(engine, campaign, "李市镇"), _unit(engine, campaign, "慈云镇")
    ids = [_nominate(engine, campaign, spec, town, State.SUBMITTED, f"李市{i}") for i in range(3)]
    draft = _nominate(engine, campaign, spec, town, State.DRAFT, "李市草稿")
    _nominate(engine, campaign, spec, other, State.SUBMITTED, "慈云甲")
    page = client.get(f"/unit/{units.link_token(town)}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store" and "noindex" in page.headers["x-robots-tag"]
    html = page.text
    assert "李市镇 · 推荐情况" in html and "慈云甲" not in html
    assert re.search(r"已推荐 <strong>3</strong> / 名额 <strong>2</strong>，超出名额仍可推荐，将予标注", html)
    for i in ids:
        assert f'href="/unit/{units.link_token(town)}/nominations/{i}/form.docx"' in html
        assert f'href="/unit/{units.link_token(town)}/nominations/{i}/form.pdf"' in html
    assert "已提交" in html and "草稿（未提交）" in html and "（不计入名额）" in html and f'data-id="{draft}"' in html
    within = client.get(f"/unit/{units.link_token(other)}").text
    assert re.search(r"已推荐 <strong>1</strong> / 名额 <strong>2</strong></p>", within) and "李市" not in within


def test_a_wrong_unit_link_is_a_404(client: Any, engine: Any, campaign: Any) -> None:
    token = units.link_token(_unit(engine, campaign, "嘉平镇"))
    for wrong in (token[:-1] + ("a" if token[-1] != "a" else "b"), "0" * 40, "nonsense"):
        response = client.get(f"/unit/{wrong}")
        assert response.status_code == 404 and "链接无效或已失效" in response.text


def test_office_lists_units_with_quota_use_per_town(as_member: Any, engine: Any, campaign: Any, spec: Any) -> None:
    town = _unit(engine, campaign, "夏坝镇")
    for i in range(3):
        _nominate(engine, campaign, spec, town, State.SUBMITTED, f"夏坝{i}")
    office, _ = as_member("office")
    page = office.get("/committee/units")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    rows = re.findall(r'<tr id="unit-(\d+)".*?</tr>', page.text, re.S)
    assert len(rows) == len(spec.units)
    row = re.search(rf'<tr id="unit-{town.id}".*?</tr>', page.text, re.S)
    assert row and "夏坝镇" in row.group(0) and "超出名额" in row.group(0) and "各镇街" in row.group(0)
    assert f"http://testserver/unit/{units.link_token(town)}" in row.group(0)
    quiet = re.search(rf'<tr id="unit-{_unit(engine, campaign, "西湖镇").id}".*?</tr>', page.text, re.S)
    assert quiet and "超出名额" not in quiet.group(0)
    assert 'href="/committee/units"' in page.text  # in the office's nav


def test_office_adds_and_edits_units_audited_typing_kept(as_member: Any, engine: Any, campaign: Any) -> None:
    office, csrf = as_member("office")
    added = office.post("/committee/units", data={"csrf_token": csrf, "name": "江津区机械工程学会",
                                                  "category": "社会组织", "quota": "2", "contact_person": "周强",
                                                  "phone": "13800000000", "contact_email": "jx@assoc.example.cn"})
    assert added.status_code == 303
    association = _unit(engine, campaign, "江津区机械工程学会")
    assert association.added_by_office and association.contact_person == "周强"
    refused = office.post("/committee/units", data={"csrf_token": csrf, "name": "江津区汽摩协会",
                                                    "category": "社会组织", "quota": "2", "contact_person": "吴",
                                                    "contact_email": "bad"})
    assert refused.status_code == 422 and "邮箱“bad”格式不正确" in refused.text
    assert 'value="江津区汽摩协会"' in refused.text and 'value="吴"' in refused.text  # nothing typed is lost

    town = _unit(engine, campaign, "杜市镇")
    edited = office.post(f"/committee/units/{town.id}", data={"csrf_token": csrf, "contact_person": "黄丽",
                                                              "phone": "023-47000000",
                                                              "contact_email": "ds@jiangjin.example.cn", "quota": "3"})
    assert edited.status_code == 303
    town = _unit(engine, campaign, "杜市镇")
    assert (town.contact_person, town.quota, town.edited_by_office) == ("黄丽", 3, True)
    bad = office.post(f"/committee/units/{town.id}", data={"csrf_token": csrf, "contact_person": "黄丽丽",
                                                           "phone": "023", "quota": "3"})
    assert bad.status_code == 422 and "联系电话“023”格式不正确" in bad.text and 'value="黄丽丽"' in bad.text
    assert _unit(engine, campaign, "杜市镇").contact_person == "黄丽"

    old = units.link_token(town)
    assert office.post(f"/committee/units/{town.id}/link", data={"csrf_token": csrf}).status_code == 303
    assert office.get(f"/unit/{old}").status_code == 404
    assert office.get(f"/unit/{units.link_token(_unit(engine, campaign, '杜市镇'))}").status_code == 200
    assert office.post("/committee/units/999999", data={"csrf_token": csrf, "quota": "1"}).status_code == 404
    with unit_of_work(engine, readonly=True) as session:
        actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert [a for a in actions if a.startswith("unit_")] == ["unit_added", "unit_edited", "unit_link_regenerated"]


def test_only_office_admins_manage_units(as_member: Any, engine: Any, campaign: Any) -> None:
    member, csrf = as_member("rev", Role.REVIEWER)
    town = _unit(engine, campaign, "广兴镇")
    assert member.get("/committee/units").status_code == 403
    assert member.post(f"/committee/units/{town.id}", data={"csrf_token": csrf, "quota": "9"}).status_code == 403
    assert member.post(f"/committee/units/{town.id}/link", data={"csrf_token": csrf}).status_code == 403
    office, _ = as_member("office")
    assert office.post(f"/committee/units/{town.id}", data={"quota": "9"}).status_code == 403  # no CSRF token
    assert _unit(engine, campaign, "广兴镇").quota == 2


def test_the_form_offers_each_town_grouped(client: Any) -> None:
    html = client.get("/apply/unit").text
    towns = re.search(r'<optgroup label="镇街">(.*?)</optgroup>', html, re.S)
    assert towns and towns.group(1).count("<option") == 30 and "几江街道" in towns.group(1)
    assert "各镇街" not in html


def test_the_unit_downloads_the_forms_of_its_own_nominations_only(client: Any, engine: Any, campaign: Any,
                                                                  spec: Any) -> None:
    town, other = _unit(engine, campaign, "白沙镇"), _unit(engine, campaign, "石门镇")
    own = _nominate(engine, campaign, spec, town, State.SUBMITTED, "白沙巧匠")
    theirs = _nominate(engine, campaign, spec, other, State.SUBMITTED, "石门巧匠")
    token = units.link_token(town)
    word = client.get(f"/unit/{token}/nominations/{own}/form.docx")
    assert word.status_code == 200 and word.headers["cache-control"] == "private, no-store"
    assert "filename*=UTF-8''" in word.headers["content-disposition"]
    text = "\n".join(c.text for t in docx.Document(io.BytesIO(word.content)).tables for r in t.rows for c in r.cells)
    assert "白沙巧匠" in text and "白沙镇" in text
    pdf = client.get(f"/unit/{token}/nominations/{own}/form.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    for path in (f"/unit/{token}/nominations/{theirs}/form.pdf", f"/unit/{token}/nominations/{own}/form.odt",
                 f"/unit/{token[:-1]}{'a' if token[-1] != 'a' else 'b'}/nominations/{own}/form.pdf"):
        refused = client.get(path)
        assert refused.status_code == 404, path


def _listed(html: str) -> list[str]:
    return re.findall(r'<tr id="unit-\d+".*?<td data-label="单位" class="unit-name">([^<]+?)\s*(?:<|$)', html, re.S)


def test_office_searches_and_filters_the_units_in_the_url(as_member: Any, engine: Any, campaign: Any,
                                                           spec: Any) -> None:
    with unit_of_work(engine) as session:
        town = session.exec(select(NominatingUnit).where(NominatingUnit.name == "几江街道")).one()
        town.contact_person, town.phone, town.contact_email = "李明", "023-47521234", "JJ@jiangjin.example.cn"
        session.add(town)
    for i in range(3):
        _nominate(engine, campaign, spec, _unit(engine, campaign, "夏坝镇"), State.SUBMITTED, f"夏坝{i}")
    _nominate(engine, campaign, spec, _unit(engine, campaign, "西湖镇"), State.SUBMITTED, "西湖甲")
    _nominate(engine, campaign, spec, _unit(engine, campaign, "石蟆镇"), State.DRAFT, "石蟆草稿")  # not counted
    office, csrf = as_member("office")
    assert office.post("/committee/units", data={"csrf_token": csrf, "name": "江津区机械工程学会",
                                                 "category": "社会组织", "quota": "2"}).status_code == 303
    every = _listed(office.get("/committee/units").text)
    assert len(every) == len(spec.units) + 1

    def listed(**params: str) -> list[str]:
        page = office.get("/committee/units", params=params)
        assert page.status_code == 200, params
        return _listed(page.text)

    # the search: name, contact person, phone (with or without its dash), email (any case)
    for words in ("几江", "李明", "47521234", "02347521234", "jj@JIANGJIN", "李明 几江街道"):
        assert listed(q=words) == ["几江街道"], words
    assert listed(q="李明 夏坝") == []
    assert listed(q="街道") == ["几江街道", "德感街道", "双福街道", "鼎山街道", "圣泉街道"]
    # by category: the towns of 各镇街, the associations
    towns = listed(category="镇街")
    assert len(towns) == 30 and "几江街道" in towns and "区人力社保局" not in towns
    assert listed(category="社会组织") == ["江津区机械工程学会"]
    assert listed(category="没有这类") == []
    # by quota use: drafts do not count
    assert listed(only="over") == ["夏坝镇"]
    assert sorted(listed(only="nominated")) == sorted(["夏坝镇", "西湖镇"])
    assert len(listed(only="none")) == len(every) - 2 and "石蟆镇" in listed(only="none")
    assert listed(category="镇街", only="nominated", q="西湖") == ["西湖镇"]
    # lenient like the other filters: control characters dropped, an unknown choice ignored, never a 5xx
    assert listed(q="夏坝\x00镇") == ["夏坝镇"]
    assert len(listed(q="\x00\x1f", category="\x00", only="bogus")) == len(every)
    assert len(listed(q="镇" * 500)) == 0
    page = office.get("/committee/units", params={"q": "李明", "category": "镇街", "only": "nominated"})
    assert 'name="q" value="李明"' in page.text and '<option value="镇街" selected>镇街（各镇街）</option>' in page.text
    assert '<option value="nominated" selected>已有推荐</option>' in page.text
    assert "没有符合条件的单位" in page.text and f"符合条件的单位 0 个（共 {len(every)} 个）" in page.text

    # an edit returns to the same filtered list; a refused one shows it with the unit being edited
    jj = _unit(engine, campaign, "几江街道")
    back = "q=%E6%9D%8E%E6%98%8E&category=%E9%95%87%E8%A1%97"  # q=李明&category=镇街
    filtered = office.get("/committee/units?" + back).text
    assert f'<input type="hidden" name="filter" value="{back.replace("&", "&amp;")}">' in filtered
    saved = office.post(f"/committee/units/{jj.id}", data={"csrf_token": csrf, "contact_person": "李明",
                                                          "phone": "023-47521235", "quota": "2", "filter": back})
    assert saved.status_code == 303 and saved.headers["location"] == f"/committee/units?{back}#unit-{jj.id}"
    refused = office.post(f"/committee/units/{jj.id}", data={"csrf_token": csrf, "contact_person": "王芳",
                                                            "phone": "023", "quota": "2", "filter": back})
    assert refused.status_code == 422 and _listed(refused.text) == ["几江街道"] and 'value="王芳"' in refused.text
    junk = office.post(f"/committee/units/{jj.id}/link", data={"csrf_token": csrf, "filter": "q=\x00&only=evil&x=1"})
    assert junk.status_code == 303 and junk.headers["location"] == f"/committee/units#unit-{jj.id}"
