"""Drafts, form rules, the prior-editions registry, quotas."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidTransition, ValidationFailed
from nominations import service as nominations
from nominations.models import NominationKind, PriorAward
from nominations.states import State
from tests.factories import complete_form, create_draft, create_nomination


def test_draft_may_be_incomplete_but_never_wrong(uow, campaign, spec, clock):
    with uow() as session:
        draft = nominations.create_draft(session, campaign, spec, {"kind": "self", "name": "钱工"})
        problems = nominations.form_problems(draft, spec)
    assert {"deeds", "phone", "applicant_signature"} <= {p.field for p in problems}
    assert "unit_opinion" not in {p.field for p in problems}
    bad = [
        ({"technical_grade": "大师"}, "technical_grade must be one of"),
        ({"phone": "12345"}, "phone '12345' is not"),
        ({"deeds": "字" * 501}, "deeds has 501 characters; at most 500"),
        ({"priority_conditions": ["P9"]}, "unknown priority condition"),
        ({"years_of_service": -1}, "years_of_service"),
        ({"favourite_colour": "red"}, "unknown field(s): favourite_colour"),
    ]
    for extra, message in bad:
        with pytest.raises(ValidationFailed, match=message.replace("(", r"\(").replace(")", r"\)")), uow() as s:
            nominations.create_draft(s, campaign, spec, {"kind": "self", **extra})


def test_unit_form_needs_the_units_opinion(uow, campaign, spec, clock):
    with uow() as session:
        draft = create_draft(session, campaign, spec, kind=NominationKind.UNIT, unit_opinion=None)
        fields = {p.field for p in nominations.form_problems(draft, spec)}
    assert fields == {"unit_opinion"}


def test_only_drafts_are_edited(uow, campaign, spec, clock):
    with uow() as session:
        draft = create_draft(session, campaign, spec)
        nominations.update_draft(session, draft, spec, {"deeds": "新的事迹"})
        assert draft.deeds == "新的事迹"
        with pytest.raises(ValidationFailed, match="phone"):
            nominations.update_draft(session, draft, spec, {"phone": "abc"})
        submitted = create_nomination(session, campaign, spec, State.SUBMITTED)
        with pytest.raises(InvalidTransition, match="only drafts can be edited"):
            nominations.update_draft(session, submitted, spec, {"deeds": "改"})


def test_over_quota_is_allowed_and_flagged(uow, campaign, spec, clock):
    with uow() as session:
        rows = [create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT)
                for _ in range(4)]
        unit_id = rows[0].unit_id
        assert nominations.unit_usage(session, campaign.id)[unit_id] == 4
        # quota 3 for 区人力社保局: only the fourth submitted is beyond it
        assert [nominations.is_over_quota(session, n) for n in rows] == [False, False, False, True]
        assert not nominations.is_over_quota(session, create_draft(session, campaign, spec))


def test_import_prior_registry(uow, campaign, spec, clock, tmp_path: Path):
    path = tmp_path / "prior.csv"
    path.write_text(
        "\ufeffedition,award,name,birth_date,employer\n"
        "1,winner,李匠,1970-02-03,重庆某厂\n"
        "2,津工精匠入围奖,赵入围,,某公司\n",
        encoding="utf-8",
    )
    with uow() as session:
        assert nominations.import_prior(session, path) == 2
        assert nominations.import_prior(session, path) == 0  # rows already present are kept once
    with uow() as session:
        from sqlmodel import select

        rows = {r.name: r for r in session.exec(select(PriorAward))}
    assert rows["赵入围"].award == "finalist" and rows["李匠"].birth_date.year == 1970


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("year,name\n1,x\n", "missing column(s) edition, award"),
        ("edition,award,name\none,winner,x\n", "line 2: edition 'one' is not a number"),
        ("edition,award,name\n1,gold,x\n", "line 2: award 'gold' is not winner or finalist"),
        ("edition,award,name,birth_date\n1,winner,x,03/02/1970\n", "line 2: birth_date '03/02/1970' is not YYYY-MM-DD"),
        ("edition,award,name\n1,winner,\n", "line 2: name is empty"),
        ("edition,award,name\n", "no rows"),
        ("edition,award,name\n1,winner,x,extra\n", "line 2: more fields than columns"),
    ],
)
def test_malformed_registry_is_refused_whole(uow, campaign, clock, tmp_path: Path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValidationFailed) as info, uow() as session:
        nominations.import_prior(session, path)
    assert message in str(info.value) and "\n" not in str(info.value)
    with uow() as session:
        from sqlmodel import select

        assert session.exec(select(PriorAward)).all() == []


def test_registry_in_gbk_is_refused_with_advice(uow, campaign, clock, tmp_path: Path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("edition,award,name\n1,winner,李匠\n".encode("gbk"))
    with pytest.raises(ValidationFailed, match="not UTF-8"), uow() as session:
        nominations.import_prior(session, path)


def test_complete_form_factory_is_complete(spec):
    form = complete_form()
    assert nominations.missing_fields(form) == []
