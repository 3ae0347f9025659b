"""Nominating units as parties: the file's "各镇街" expanded into each town and street with its own
quota, quota use counted per unit, the office's units and edits kept across a reload, the unit link,
and every office act on a unit audited. Both databases."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from sqlmodel import select

from audit.models import AuditEvent
from campaigns import units
from campaigns.models import NominatingUnit
from config.campaign import DEFAULT_CAMPAIGN_FILE, load_campaign, parse_campaign
from core.errors import ConfigError, NotFound, ValidationFailed
from nominations import service as nominations
from nominations import standing
from nominations.models import NominationKind
from nominations.states import State
from stages import service as stages
from tests.factories import OFFICE, create_nomination

TOWNS_2021 = 30


def _unit(session, campaign, name: str) -> NominatingUnit:
    return session.exec(select(NominatingUnit).where(NominatingUnit.campaign_id == campaign.id,
                                                     NominatingUnit.name == name)).one()


def test_the_file_lists_each_town_and_street_with_its_own_quota(spec):
    towns = [u for u in spec.units if u.group == "各镇街"]
    assert len(towns) == TOWNS_2021 and len({u.name for u in towns}) == TOWNS_2021
    assert {u.quota for u in towns} == {2} and {u.category for u in towns} == {"镇街"}
    assert {"几江街道", "圣泉街道", "四面山镇", "珞璜镇"} <= {u.name for u in towns}
    assert all(u.name.endswith(("街道", "镇")) for u in towns)
    assert not any(u.name.startswith("各") for u in spec.units)  # no unit stands for several


def test_an_old_file_with_towns_as_one_unit_says_what_to_write(tmp_path: Path):
    text = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8")
    start = text.index('[[units]]\ngroup = "各镇街"')
    end = text.index("]\n", text.index("members = [", start)) + 2
    old = text[:start] + '[[units]]\nname = "各镇街"\ncategory = "镇街"\nquota = 2\n' + text[end:]
    path = tmp_path / "old.toml"
    path.write_text(old, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    assert "'各镇街' stands for several units" in str(info.value) and "members = [" in str(info.value)
    # a campaign stored before the change is still readable (its spec is parsed, not refused)
    assert parse_campaign(tomllib.loads(old)).units[-1].name == "各镇街"


def test_a_group_entry_needs_members_and_no_name():
    data = tomllib.loads(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    data["units"][-1]["members"] = []
    with pytest.raises(ConfigError, match="members: a non-empty list"):
        parse_campaign(data)
    data["units"][-1]["members"] = ["几江街道", "几江街道"]
    with pytest.raises(ConfigError, match="listed twice: 几江街道"):
        parse_campaign(data)


def test_quota_is_counted_per_town(uow, campaign, spec, clock):
    with uow() as session:
        jijiang, dexing = _unit(session, campaign, "几江街道"), _unit(session, campaign, "德感街道")
        made = [create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=u.id)
                for u in (jijiang, jijiang, dexing, dexing)]
        create_nomination(session, campaign, spec, State.DRAFT, kind=NominationKind.UNIT, unit_id=jijiang.id)
        create_nomination(session, campaign, spec, State.WITHDRAWN, kind=NominationKind.UNIT, unit_id=jijiang.id)
    with uow() as session:
        rows = {s.unit.name: s for s in standing.standings(session, campaign.id)}
        assert (rows["几江街道"].used, rows["德感街道"].used, rows["双福街道"].used) == (2, 2, 0)
        assert not rows["几江街道"].over and not rows["德感街道"].over  # two towns, two each: within
        assert not any(nominations.is_over_quota(session, n) for n in made)
        third = create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT,
                                  unit_id=jijiang.id)
    with uow() as session:
        rows = {s.unit.name: s for s in standing.standings(session, campaign.id)}
        assert rows["几江街道"].used == 3 and rows["几江街道"].over  # the third in one town: over
        assert not rows["德感街道"].over
        assert nominations.is_over_quota(session, third)
        mine = standing.standing(session, _unit(session, campaign, "几江街道"))
        assert len(mine.nominations) == 5 and mine.used == 3  # the draft and the withdrawn listed, not counted


def test_office_units_and_edits_survive_a_reload(uow, campaign, spec, clock):
    with uow() as session:
        town = _unit(session, campaign, "几江街道")
        units.edit_unit(session, town, {"contact_person": "李明", "phone": "023-47521234",
                                        "contact_email": "jj@jiangjin.example.cn", "quota": "4"}, actor=OFFICE)
        units.add_unit(session, campaign.id, {"name": "江津区焊接协会", "category": "社会组织", "quota": "2",
                                              "contact_email": "hj@assoc.example.cn"}, actor=OFFICE)
    # next year's office changes the file: every town's quota 3, 德感街道 dropped
    changed = spec.model_copy(update={"units": [
        u.model_copy(update={"quota": 3}) if u.group == "各镇街" else u
        for u in spec.units if u.name != "德感街道"
    ]})
    with uow() as session:
        stages.load_campaign(session, changed)
    with uow() as session:
        town = _unit(session, campaign, "几江街道")
        assert (town.quota, town.contact_person, town.phone, town.contact_email) == (
            4, "李明", "023-47521234", "jj@jiangjin.example.cn")  # the office's edit kept
        assert _unit(session, campaign, "双福街道").quota == 3  # untouched: the file decides
        association = _unit(session, campaign, "江津区焊接协会")
        assert association.added_by_office and not association.retired and association.quota == 2
        dropped = _unit(session, campaign, "德感街道")
        assert dropped.retired and dropped not in units.offered_units(session, campaign.id)
    with uow() as session:
        stages.load_campaign(session, spec)  # listed again: offered again
    with uow() as session:
        assert not _unit(session, campaign, "德感街道").retired


def test_unit_edits_are_audited_and_checked(uow, campaign, clock):
    with uow() as session:
        town = _unit(session, campaign, "石蟆镇")
        changed = units.edit_unit(session, town, {"contact_person": "张华", "phone": "", "contact_email": "",
                                                  "quota": "3"}, actor=OFFICE)
        assert changed == {"contact_person": [None, "张华"], "quota": [2, 3]}
        assert units.edit_unit(session, town, {"contact_person": "张华", "quota": "3"}, actor=OFFICE) == {}
        units.add_unit(session, campaign.id, {"name": "江津区电工协会", "category": "社会组织", "quota": "2"},
                       actor=OFFICE)
        units.regenerate_link(session, town, actor=OFFICE)
    with uow() as session:
        events = list(session.exec(select(AuditEvent).order_by(AuditEvent.id)))
        mine = [(e.action, e.subject, e.actor) for e in events if e.action.startswith("unit_")]
        assert [a for a, _, _ in mine] == ["unit_edited", "unit_added", "unit_link_regenerated"]
        assert mine[0][1] == f"unit:{town.id}" and mine[0][2] == str(OFFICE)
        edited = next(e for e in events if e.action == "unit_edited")
        assert edited.data == {"name": "石蟆镇", "changes": {"contact_person": [None, "张华"], "quota": [2, 3]}}
    with uow() as session:
        town = _unit(session, campaign, "石蟆镇")
        for bad, field in (({"quota": "-1"}, "推荐名额"), ({"quota": "2", "contact_email": "not-mail"}, "邮箱"),
                           ({"quota": "2", "phone": "call me"}, "联系电话")):
            with pytest.raises(ValidationFailed) as info:
                units.edit_unit(session, town, bad, actor=OFFICE)
            assert field in (info.value.message_zh or "")
        with pytest.raises(ValidationFailed, match="exists"):
            units.add_unit(session, campaign.id, {"name": "石蟆镇", "category": "镇街", "quota": "2"}, actor=OFFICE)


def test_the_unit_link_finds_its_unit_and_a_new_link_ends_the_old(uow, campaign, clock):
    with uow() as session:
        town = _unit(session, campaign, "白沙镇")
        old = units.link_token(town)
        assert units.find_by_link(session, old).id == town.id
        assert town.link_hash != old and old not in (town.link_seed or "")  # the link itself is not stored
        new = units.regenerate_link(session, town, actor=OFFICE)
    with uow() as session:
        assert units.find_by_link(session, new).name == "白沙镇"
        for wrong in (old, new[:-1] + ("0" if new[-1] != "0" else "1"), "", "../x"):
            with pytest.raises(NotFound):
                units.find_by_link(session, wrong)
