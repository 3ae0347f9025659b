"""退回补正 through the pages: the office sends back from the nomination page, the applicant sees
what to fix on the status page and resubmits."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from accounts.models import Role
from nominations.models import Nomination
from nominations.states import State
from storage.db import unit_of_work
from tests.conftest import beijing
from tests.web.conftest import png_bytes
from tests.web.test_portal import SELF_FORM


def test_office_sends_back_and_the_applicant_resubmits(client: Any, as_member: Any, engine: Any, campaign: Any,
                                                       clock: Any) -> None:
    response = client.post("/apply/self", data=SELF_FORM | {"action": "save"})
    link = response.headers["location"].split("?")[0]
    client.post(f"{link}/attachments", data={"kind": "photo"}, files={"file": ("p.png", png_bytes(), "image/png")})
    assert client.post(link, data=SELF_FORM | {"action": "submit"}).status_code == 303
    with unit_of_work(engine, readonly=True) as session:
        nomination_id = session.exec(select(Nomination.id)).one()
    clock.set(beijing(2021, 6, 3, 9, 0))
    reviewer, token = as_member("reviewer", Role.REVIEWER)
    page = reviewer.get(f"/committee/nominations/{nomination_id}").text
    assert 'name="due_at"' in page and "退回补正" in page
    no_due = reviewer.post(f"/committee/nominations/{nomination_id}/act",
                           data={"csrf_token": token, "event": "return_for_changes", "reason": "补充证书"})
    assert no_due.status_code in (409, 422) and "请填写补正截止时间" in no_due.text
    sent = reviewer.post(f"/committee/nominations/{nomination_id}/act", data={
        "csrf_token": token, "event": "return_for_changes", "reason": "请补充技师证书复印件",
        "due_at": "2021-06-10T18:00"})
    assert sent.status_code == 303
    status = client.get(link).text
    assert "退回补正中" in status and "请补充技师证书复印件" in status
    assert "补正截止" in status and "2021年6月10日 18:00" in status and "补正后重新提交" in status
    again = client.post(link, data=SELF_FORM | {"honours": "技术能手；技师证书已补", "action": "submit"})
    assert again.status_code == 303
    with unit_of_work(engine, readonly=True) as session:
        row = session.get(Nomination, nomination_id)
        assert row.state == State.SUBMITTED and "已补" in row.honours
