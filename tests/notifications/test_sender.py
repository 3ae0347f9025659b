"""The sender against a real SMTP server (aiosmtpd on 127.0.0.1): what arrives, and what happens
when the server is down, busy, refuses, drops the line, or the sender dies mid-batch.
Afterwards every mail has arrived exactly once (by Message-ID) or is marked failed with the
server's answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from campaigns import service as campaigns
from config.settings import SmtpSecurity
from core.errors import JingongError
from nominations.models import NominationKind
from nominations.states import State
from notifications import background, drain, probe, transports
from notifications.context import nomination_context
from notifications.models import MailStatus, MailTemplate, OutboxMail
from notifications.queue import queue_mail
from storage.db import unit_of_work
from tests.factories import create_nomination
from tests.notifications.conftest import SmtpServer, free_port, settings_for

ROOT = Path(__file__).resolve().parents[2]


def _queue(uow, campaign, spec, count: int, **overrides) -> list[int]:
    with uow() as session:
        return [create_nomination(session, campaign, spec, State.SUBMITTED, **overrides).id for _ in range(count)]


def _rows(uow) -> list[OutboxMail]:
    with uow() as session:
        return list(session.exec(select(OutboxMail).order_by(OutboxMail.id)))


def _transport(settings) -> transports.SmtpTransport:
    return transports.SmtpTransport.from_settings(settings)


def _every_mail_once_or_failed(uow, server: SmtpServer) -> None:
    arrived = Counter(server.recorder.message_ids())
    for row in _rows(uow):
        if row.status == MailStatus.SENT:
            assert arrived[row.message_id] == 1, row.id
        else:
            assert row.status == MailStatus.FAILED and row.last_error, (row.id, row.status)
            assert arrived[row.message_id] == 0


def test_what_arrives_is_right(uow, engine, campaign, spec, clock, smtp_server, mail_settings):
    with uow() as session:
        unit = campaigns.list_units(session, campaign.id)[0]
        unit.contact_email = "hr@unit.example.cn"
        session.add(unit)
        n = create_nomination(session, campaign, spec, State.SUBMITTED, kind=NominationKind.UNIT, unit_id=unit.id,
                              name="张师傅", employer="重庆江津某齿轮厂")
    report = drain.drain(engine, _transport(mail_settings), settings=mail_settings)
    assert (report.sent, report.failed, report.retried) == (2, 0, 0)  # the applicant's, the unit's
    arrived, to_unit = smtp_server.arrived
    row, unit_row = _rows(uow)
    assert row.status == MailStatus.SENT and row.sent_at == clock.now() and row.attempts == 1
    assert arrived.mail_from == "noreply@jingong.local"
    assert arrived.rcpt_tos == [n.applicant_email] and to_unit.rcpt_tos == ["hr@unit.example.cn"]
    assert to_unit.message["Message-ID"] == unit_row.message_id and unit_row.status == MailStatus.SENT
    raw = arrived.data
    assert raw.isascii()  # 7-bit on the wire: headers RFC 2047, bodies base64
    assert b"=?utf-8?" in raw
    message = arrived.message
    assert message["Subject"] == "【津工精匠】申报已提交：张师傅"
    assert message["From"].addresses[0].display_name == "津工精匠评选组委会办公室"
    assert message["To"] == n.applicant_email
    assert message["Message-ID"] == row.message_id
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text == row.text_body and html == row.html_body
    assert "张师傅同志的江津区第三届“津工精匠”评选活动申报" in text
    assert "联系人：区人力社保局 王林，电话 47535232" in text
    assert f"/status/{n.token}" in html and "“津工精匠”评选组委会办公室" in html


def test_one_connection_for_the_whole_batch(uow, engine, campaign, spec, clock, smtp_server, mail_settings):
    _queue(uow, campaign, spec, 6)
    report = drain.drain(engine, _transport(mail_settings), settings=mail_settings.model_copy(
        update={"mail_batch_size": 4}))
    assert report.sent == 6
    assert smtp_server.recorder.connections == 1
    _every_mail_once_or_failed(uow, smtp_server)


def test_server_down_then_up(uow, engine, campaign, spec, clock):
    port = free_port()
    settings = settings_for(port)
    _queue(uow, campaign, spec, 3)
    report = drain.drain(engine, _transport(settings), settings=settings)
    assert report.sent == 0 and report.retried == 1 and "cannot connect" in (report.unreachable or "")
    rows = _rows(uow)
    assert [r.status for r in rows] == [MailStatus.QUEUED] * 3
    assert rows[0].attempts == 1 and rows[0].next_attempt_at == clock.now() + timedelta(seconds=60)
    assert "cannot connect" in rows[0].last_error
    assert [r.attempts for r in rows[1:]] == [0, 0]  # never tried: given back untouched

    server = SmtpServer(port).start()
    try:
        # the first one waits for its backoff; the untried ones go at once
        assert drain.drain(engine, _transport(settings), settings=settings).sent == 2
        clock.advance(timedelta(seconds=60))
        assert drain.drain(engine, _transport(settings), settings=settings).sent == 1
        _every_mail_once_or_failed(uow, server)
        assert len(server.arrived) == 3
    finally:
        server.stop()


def test_busy_then_accepted(uow, engine, campaign, spec, clock, smtp_server, mail_settings):
    _queue(uow, campaign, spec, 2)
    smtp_server.recorder.data_replies = ["451 4.3.0 Try again later", "452 4.3.1 Insufficient storage"]
    report = drain.drain(engine, _transport(mail_settings), settings=mail_settings)
    assert (report.sent, report.retried) == (0, 2)
    rows = _rows(uow)
    assert [r.last_error for r in rows] == ["451 4.3.0 Try again later", "452 4.3.1 Insufficient storage"]
    assert drain.drain(engine, _transport(mail_settings), settings=mail_settings).sent == 0  # not yet due
    clock.advance(timedelta(seconds=61))
    assert drain.drain(engine, _transport(mail_settings), settings=mail_settings).sent == 2
    assert [r.attempts for r in _rows(uow)] == [2, 2]
    _every_mail_once_or_failed(uow, smtp_server)


def test_permanent_refusal_is_marked_failed_with_the_answer(uow, engine, campaign, spec, clock, smtp_server,
                                                            mail_settings):
    _queue(uow, campaign, spec, 2)
    rows = _rows(uow)
    smtp_server.recorder.refuse = {rows[0].recipients[0]: "550 5.1.1 Mailbox does not exist"}
    smtp_server.recorder.data_replies = []
    report = drain.drain(engine, _transport(mail_settings), settings=mail_settings)
    assert (report.sent, report.failed) == (1, 1)
    first, second = _rows(uow)
    assert first.status == MailStatus.FAILED and "550 5.1.1 Mailbox does not exist" in first.last_error
    assert second.status == MailStatus.SENT
    _every_mail_once_or_failed(uow, smtp_server)


def test_a_5xx_on_data_fails_at_once(uow, engine, campaign, spec, clock, smtp_server, mail_settings):
    _queue(uow, campaign, spec, 1)
    smtp_server.recorder.data_replies = ["554 5.7.1 Message rejected as spam"]
    drain.drain(engine, _transport(mail_settings), settings=mail_settings)
    [row] = _rows(uow)
    assert (row.status, row.last_error, row.attempts) == (MailStatus.FAILED, "554 5.7.1 Message rejected as spam", 1)


def test_some_recipients_refused_the_others_served(uow, engine, campaign, spec, clock, smtp_server, mail_settings):
    with uow() as session:
        n = create_nomination(session, campaign, spec, State.DRAFT, applicant_email=None)  # no mail of its own
        queue_mail(session, key="two", template=MailTemplate.SUBMIT, nomination_id=n.id,
                   recipients=["here@unit.example.cn", "gone@unit.example.cn"],
                   context={**nomination_context(session, n, spec), "at_local": "2021年5月1日 10:00"})
    smtp_server.recorder.refuse = {"gone@unit.example.cn": "550 5.1.1 No such user"}
    assert drain.drain(engine, _transport(mail_settings), settings=mail_settings).sent == 1
    [row] = _rows(uow)
    assert row.status == MailStatus.SENT
    assert row.refused == {"gone@unit.example.cn": "550 5.1.1 No such user"}
    assert "gone@unit.example.cn: 550 5.1.1 No such user" in row.last_error
    [arrived] = smtp_server.arrived
    assert arrived.rcpt_tos == [row.recipients[0]]


def test_connection_dropped_mid_batch(uow, engine, campaign, spec, clock, smtp_server, mail_settings):
    _queue(uow, campaign, spec, 5)
    smtp_server.recorder.drop_at = {3}
    report = drain.drain(engine, _transport(mail_settings), settings=mail_settings)
    assert (report.sent, report.retried) == (4, 1)  # reconnected for the 4th and 5th
    dropped = next(r for r in _rows(uow) if r.status == MailStatus.QUEUED)
    assert "connection lost" in dropped.last_error
    clock.advance(timedelta(minutes=5))
    assert drain.drain(engine, _transport(mail_settings), settings=mail_settings).sent == 1
    assert smtp_server.recorder.connections == 3
    _every_mail_once_or_failed(uow, smtp_server)
    assert len(smtp_server.arrived) == 5


def test_too_many_temporary_failures_end_as_failed(uow, engine, campaign, spec, clock, smtp_server):
    settings = settings_for(smtp_server.port, mail_max_attempts=3, mail_retry_base_seconds=10)
    _queue(uow, campaign, spec, 1)
    smtp_server.recorder.data_replies = ["421 4.7.0 Too busy"] * 5
    waits = []
    for _ in range(3):
        drain.drain(engine, _transport(settings), settings=settings)
        [row] = _rows(uow)
        if row.status == MailStatus.QUEUED:
            waits.append(row.next_attempt_at - clock.now())
        clock.advance(timedelta(hours=1))
    assert waits == [timedelta(seconds=10), timedelta(seconds=20)]  # exponential backoff
    assert row.status == MailStatus.FAILED
    assert row.last_error == "gave up after 3 attempts; last: 421 4.7.0 Too busy"


def test_starttls_is_required_never_opportunistic(uow, engine, campaign, spec, clock, smtp_server):
    # aiosmtpd without a TLS context offers no STARTTLS: the mail must not go out in clear
    settings = settings_for(smtp_server.port, smtp_security=SmtpSecurity.STARTTLS)
    _queue(uow, campaign, spec, 1)
    report = drain.drain(engine, _transport(settings), settings=settings)
    assert report.sent == 0 and smtp_server.arrived == []
    [row] = _rows(uow)
    assert row.status == MailStatus.QUEUED and "STARTTLS" in row.last_error.upper()


def test_a_stuck_claim_is_taken_over_with_the_same_message_id(uow, engine, campaign, spec, clock, smtp_server,
                                                              mail_settings):
    _queue(uow, campaign, spec, 2)
    claimed = drain.claim(engine, 1, mail_settings)  # a sender that then dies
    assert len(claimed) == 1
    assert drain.drain(engine, _transport(mail_settings), settings=mail_settings).sent == 1  # lease still runs
    clock.advance(timedelta(seconds=mail_settings.mail_lease_seconds))
    assert drain.drain(engine, _transport(mail_settings), settings=mail_settings).sent == 1
    rows = _rows(uow)
    assert all(r.status == MailStatus.SENT for r in rows) and rows[0].attempts == 2
    assert smtp_server.recorder.message_ids()[-1] == claimed[0].message_id
    # the dead sender's late "sent" mark cannot overwrite its successor's
    drain.record_result(engine, claimed[0], transports.SendResult(transports.Outcome.PERMANENT, "late"), mail_settings)
    assert _rows(uow)[0].status == MailStatus.SENT


def test_two_senders_at_once_never_send_a_mail_twice(uow, pg_engine, spec, clock, smtp_server, mail_settings):
    from stages import service as stages_service

    with unit_of_work(pg_engine) as session:
        campaign = stages_service.load_campaign(session, spec)
    _queue(lambda: unit_of_work(pg_engine), campaign, spec, 40)
    smtp_server.recorder.delay = 0.005
    settings = mail_settings.model_copy(update={"mail_batch_size": 5})
    reports: list[drain.DrainReport] = []

    def run() -> None:
        reports.append(drain.drain(pg_engine, _transport(settings), settings=settings))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.sent for r in reports) == 40 and all(r.sent > 0 for r in reports)
    assert len(smtp_server.arrived) == 40
    _every_mail_once_or_failed(lambda: unit_of_work(pg_engine), smtp_server)


def test_sender_killed_mid_batch_then_restarted(engine, uow, campaign, spec, clock, smtp_server, tmp_path):
    _queue(uow, campaign, spec, 30)
    smtp_server.recorder.delay = 0.1
    env = {
        **os.environ,
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "MAIL_BATCH_SIZE": "10",
        "MAIL_LEASE_SECONDS": "0",  # the rerun takes over the dead sender's claims at once
        "JINGONG_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "cli.main", "mail", "send"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while len(smtp_server.arrived) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # land the kill inside a conversation
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert 8 <= len(smtp_server.arrived) < 30
    stuck = [r for r in _rows(uow) if r.status == MailStatus.SENDING]
    assert stuck, "the killed sender left claimed mails behind"

    smtp_server.recorder.delay = 0
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    rows = _rows(uow)
    assert all(r.status == MailStatus.SENT for r in rows)
    arrived = Counter(smtp_server.recorder.message_ids())
    assert set(arrived) == {r.message_id for r in rows}  # nothing lost
    repeats = {mid for mid, n in arrived.items() if n > 1}
    # a repeat is only possible for a mail the killed sender held, and it carries the same Message-ID
    assert repeats <= {r.message_id for r in stuck} and all(arrived[m] == 2 for m in repeats)


def test_the_background_sender_wakes_on_commit(uow, engine, campaign, spec, clock, smtp_server, mail_settings):
    handle = background.start_sender(engine, transport_factory=lambda: _transport(mail_settings), interval=60)
    try:
        deadline = time.monotonic() + 10
        while handle.passes == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        _queue(uow, campaign, spec, 2)  # the commit wakes it; the 60 s poll would be too late
        while len(smtp_server.arrived) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(smtp_server.arrived) == 2
    finally:
        handle.shutdown(10)
    assert not handle.running


def test_mail_test_checks_the_settings(smtp_server, mail_settings):
    answer = probe.send_test("office@example.cn", settings=mail_settings)
    assert "accepted" in answer
    [arrived] = smtp_server.arrived
    assert arrived.rcpt_tos == ["office@example.cn"] and arrived.message["Subject"] == "【津工精匠】测试邮件"
    smtp_server.recorder.refuse = {"nobody@example.cn": "550 5.1.1 unknown"}
    with pytest.raises(JingongError, match="550 5.1.1 unknown"):
        probe.send_test("nobody@example.cn", settings=mail_settings)
    with pytest.raises(JingongError, match="cannot connect"):
        probe.send_test("office@example.cn", settings=settings_for(free_port()))
