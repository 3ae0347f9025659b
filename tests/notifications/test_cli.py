"""``jingong mail ...`` against a real database, the file outbox and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from audit.models import AuditEvent
from cli.common import console
from cli.main import app
from config.settings import get_settings
from core.errors import InvalidTransition, ValidationFailed
from nominations.states import State
from notifications.models import MailStatus, OutboxMail
from storage.db import dispose_engines, unit_of_work
from tests.factories import create_nomination

runner = CliRunner()


@pytest.fixture
def cli_env(sqlite_engine, monkeypatch, tmp_path) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.setattr(console, "width", 220)  # keep table rows on one line
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    dispose_engines()


@pytest.fixture
def mails(cli_env, sqlite_engine, spec, clock):
    from stages import service as stages

    with unit_of_work(sqlite_engine) as session:
        campaign = stages.load_campaign(session, spec)
        create_nomination(session, campaign, spec, State.SUBMITTED, name="李师傅")
        create_nomination(session, campaign, spec, State.SCREENED, name="王师傅")
    with unit_of_work(sqlite_engine) as session:
        return list(session.exec(select(OutboxMail).order_by(OutboxMail.id)))


def mail(*args: str):
    return runner.invoke(app, ["mail", *args], catch_exceptions=True)


def test_list_and_counts(mails):
    result = mail("list")
    assert result.exit_code == 0, result.output
    assert "李师傅" in result.output and "queued 2" in result.output and "held 1" in result.output
    result = mail("list", "--status", "held")
    assert "王师傅" in result.output and "李师傅" not in result.output
    result = mail("list", "--status", "lost")
    assert isinstance(result.exception, ValidationFailed)
    assert "queued 2" in mail("counts").output


def test_show_prints_headers_and_text(mails):
    result = mail("show", str(mails[0].id))
    assert result.exit_code == 0, result.output
    assert f"Message-ID: {mails[0].message_id}" in result.output
    assert "Subject: 【津工精匠】申报已提交：李师傅" in result.output and "查看申报状态：" in result.output
    assert "<html" not in result.output and "<html" in mail("show", str(mails[0].id), "--html").output


def test_hold_send_unhold_release_resend(mails, sqlite_engine, tmp_path):
    assert "outbox held" in mail("hold", "--reason", "核对").output
    result = mail("send")
    assert "sent 0" in result.output and "held" in result.output
    assert not (tmp_path / "outbox").exists()
    assert "outbox released" in mail("unhold").output
    result = mail("send")
    assert result.exit_code == 0 and "sent 2" in result.output, result.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2

    held = next(m for m in mails if m.status == MailStatus.HELD)
    assert isinstance(mail("release").exception, ValidationFailed)
    assert "released 1" in mail("release", str(held.id)).output
    assert isinstance(mail("release", str(held.id)).exception, InvalidTransition)
    assert "sent 1" in mail("send").output
    assert "queued again" in mail("resend", str(mails[0].id)).output
    assert "sent 1" in mail("send").output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 4
    with unit_of_work(sqlite_engine, readonly=True) as session:
        actions = [a.action for a in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["mail.hold", "mail.unhold", "mail.release", "mail.resend"]


def test_release_a_stage_announces_it(mails):
    result = mail("release", "--stage", "screening")
    assert result.exit_code == 0 and "released 1" in result.output, result.output


def test_mail_test_against_a_real_server(cli_env, smtp_server, monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    get_settings.cache_clear()
    result = mail("test", "office@example.cn")
    assert result.exit_code == 0 and "accepted" in result.output, result.output
    assert smtp_server.arrived[0].rcpt_tos == ["office@example.cn"]
