"""Outbox sender throughput: N queued mails to a local aiosmtpd sink.

    .venv/bin/python bench/mail_bench.py [--count 10000] [--batch 100] [--database-url URL]

Measures, in the same run and against the same sink (a separate process, so the sink's CPU is
not charged to the client):
  drain     notifications.drain.drain: claim batches, build each MIME message, send over one
            connection, mark each row sent in its own transaction;
  baseline  a bare aiosmtplib loop over one connection sending the same prebuilt messages
            (no database, no MIME building);
and prints msgs/s of both, their ratio, and the process's peak RSS after the drain.
Default database: a fresh SQLite file (the embedded default) in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402

SINK = r"""
import sys, time
from aiosmtpd.controller import Controller

class Sink:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Sink.count += 1
        return "250 OK"

c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
print(Sink.count, flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from sqlalchemy import insert

    from config.settings import get_settings
    from core import clock
    from notifications import drain, message, transports
    from notifications.context import campaign_context
    from notifications.models import MailStatus, MailTemplate, OutboxMail, message_id_for
    from notifications.render import render
    from storage.db import make_engine
    from storage.migrate import create_all
    from wiring.tables import metadata

    tmp = tempfile.mkdtemp(prefix="mail-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    engine = make_engine(url)
    create_all(engine, metadata)

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert sink.stdout is not None and sink.stdin is not None
    assert sink.stdout.readline().strip() == "ready"
    settings = get_settings().model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": port, "mail_batch_size": args.batch,
    })

    # Queue N mails: one real render (a committee alert), N rows with their own keys.
    from config.campaign import load_campaign

    spec = load_campaign()
    context = {**campaign_context(spec), "alert_subject": "基准测试", "alert_body": "这是一封基准测试邮件。" * 20}
    rendered = render(MailTemplate.COMMITTEE_ALERT, context)
    now = clock.now()
    started = time.perf_counter()
    rows = []
    for i in range(args.count):
        key = f"bench:{i}"
        rows.append({
            "idempotency_key": key, "template": MailTemplate.COMMITTEE_ALERT, "recipients": [f"user{i}@example.cn"],
            "context": {}, "subject": f"{rendered.subject} #{i}", "text_body": rendered.text,
            "html_body": rendered.html, "status": MailStatus.QUEUED, "attempts": 0, "next_attempt_at": now,
            "refused": {}, "message_id": message_id_for(key), "resends": 0, "created_at": now,
        })
    with engine.begin() as conn:
        conn.execute(insert(OutboxMail.__table__), rows)  # type: ignore[attr-defined]
    queue_seconds = time.perf_counter() - started
    del rows

    started = time.perf_counter()
    report = drain.drain(engine, transports.SmtpTransport.from_settings(settings), settings=settings)
    drain_seconds = time.perf_counter() - started
    rss_after_drain = peak_rss_mb()
    assert report.sent == args.count, report

    # Baseline: the same messages, prebuilt, through a bare aiosmtplib loop on one connection.
    envelope = message.envelope_from(settings)
    messages = [
        (f"user{i}@example.cn", message.build_message(
            subject=f"{rendered.subject} #{i}", text=rendered.text, html=rendered.html,
            recipients=[f"user{i}@example.cn"], message_id=message_id_for(f"bench:{i}"),
            mail_from=settings.mail_from))
        for i in range(args.count)
    ]

    async def bare() -> float:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        t0 = time.perf_counter()
        for rcpt, data in messages:
            await smtp.sendmail(envelope, [rcpt], data)
        elapsed = time.perf_counter() - t0
        await smtp.quit()
        return elapsed

    bare_seconds = asyncio.run(bare())
    sink.stdin.close()
    received = int(sink.stdout.readline().strip() or 0)
    sink.wait(10)
    engine.dispose()

    drain_rate, bare_rate = args.count / drain_seconds, args.count / bare_seconds
    print(f"database: {engine.dialect.name}; {args.count} mails, batch {args.batch}; "
          f"sink received {received} (expected {2 * args.count})")
    print(f"queue (bulk insert):  {queue_seconds:6.2f} s")
    print(f"drain (outbox):       {drain_seconds:6.2f} s  {drain_rate:8.0f} msg/s")
    print(f"bare aiosmtplib loop: {bare_seconds:6.2f} s  {bare_rate:8.0f} msg/s")
    print(f"ratio drain/bare:     {drain_rate / bare_rate:6.2f}")
    print(f"peak RSS after drain: {rss_after_drain:6.1f} MB (process, incl. interpreter and imports)")


if __name__ == "__main__":
    main()
