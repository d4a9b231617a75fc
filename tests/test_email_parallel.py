"""Parallel delivery through the outbox to a real aiosmtpd server: one message per (alert, recipient),
images drawn once per alert, reused connections, and exactly-once after a crash in the middle of a pass."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from affectwatch.settings import REPO_ROOT
from alerts import lifecycle, outbox, render
from alerts.subscriptions import subscribe
from tests.alerts_data import decision

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
REGIONS = ("06", "36", "48")
RECIPIENTS = [f"official{i}@health.example" for i in range(8)]


def _queue_many(con, settings) -> int:
    for r in RECIPIENTS:
        subscribe(r, "*", "yellow", "immediate", con=con, now=NOW - timedelta(days=1))
    lifecycle.apply(con, [decision(region, "red") for region in REGIONS], NOW)
    return outbox.queue_immediate(con, settings, NOW)


def _parallel(settings, workers=3, batch_size=5):
    return settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"workers": workers,
                                                                                "batch_size": batch_size})})


def _pairs(msgs) -> list[tuple[str, str]]:
    return sorted((m["Subject"].split(" in ")[1].split(" (")[0], m["To"]) for m in msgs)


def test_each_alert_image_is_drawn_once_and_shared_by_all_recipients(warehouse, smtp_settings, smtp_sink, monkeypatch):
    drawn = []
    real = render.sparkline_png
    monkeypatch.setattr(render, "sparkline_png", lambda alert, s: drawn.append(alert["alert_id"]) or real(alert, s))
    assert _queue_many(warehouse, smtp_settings) == len(REGIONS) * len(RECIPIENTS)
    assert sorted(drawn) == sorted(f"{r}|flu_admissions|2026-02-28" for r in REGIONS)
    out = outbox.send_pending(_parallel(smtp_settings), warehouse, now=NOW)
    assert out["sent"] == 24 and out["errors"] == 0
    pngs: dict[str, set] = {}
    for m in smtp_sink.messages():
        img = next(p for p in m.walk() if p.get_content_type() == "image/png")
        pngs.setdefault(m["Subject"], set()).add(img.get_content())
    assert len(pngs) == len(REGIONS) and all(len(v) == 1 for v in pngs.values())


def test_parallel_pass_sends_one_message_per_alert_and_recipient(warehouse, smtp_settings, smtp_sink):
    n = _queue_many(warehouse, smtp_settings)
    out = outbox.send_pending(_parallel(smtp_settings), warehouse, now=NOW)
    assert out == {"sent": n, "errors": 0, "failed": 0, "recovered": 0, "deferred": 0}
    assert smtp_sink.handler.received == n and smtp_sink.handler.duplicates == 0
    names = {"06": "California", "36": "New York", "48": "Texas"}
    assert _pairs(smtp_sink.messages()) == sorted((names[r], to) for r in REGIONS for to in RECIPIENTS)
    journal = warehouse.execute("select outcome, count(*) from email_attempts group by all order by 1").fetchall()
    assert journal == [("sending", n), ("sent", n)]
    assert outbox.send_pending(_parallel(smtp_settings), warehouse, now=NOW + timedelta(hours=1))["sent"] == 0
    assert smtp_sink.handler.received == n


def test_server_refusing_some_messages_in_a_parallel_pass_loses_none(warehouse, smtp_settings, smtp_sink):
    n = _queue_many(warehouse, smtp_settings)
    handler = smtp_sink.handler
    real = type(handler).handle_DATA
    calls = {"n": 0}

    async def flaky(self, server, session, envelope):  # every third transmission is refused with a 4xx
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            return "451 4.3.0 try again later"
        return await real(self, server, session, envelope)

    type(handler).handle_DATA = flaky
    try:
        first = outbox.send_pending(_parallel(smtp_settings), warehouse, now=NOW)
    finally:
        type(handler).handle_DATA = real
    assert first["errors"] == n // 3 and first["sent"] == n - n // 3
    second = outbox.send_pending(_parallel(smtp_settings), warehouse, now=NOW + timedelta(minutes=5))
    assert second["sent"] == n // 3 and second["errors"] == 0
    assert len(smtp_sink.messages()) == n and handler.duplicates == 0


@pytest.mark.slow
def test_crash_in_the_middle_of_a_parallel_pass_then_resume_is_exactly_once(warehouse, smtp_settings, smtp_sink):
    n = _queue_many(warehouse, smtp_settings)
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(smtp_settings.data_dir),
           "AFFECTWATCH_SMTP__PORT": str(smtp_sink.port), "AFFECTWATCH_SMTP__HOST": smtp_sink.host,
           "AFFECTWATCH_SMTP__WORKERS": "3", "AFFECTWATCH_SMTP__BATCH_SIZE": "5",
           "AFFECTWATCH_LOG_FORMAT": "json", "PYTHONPATH": str(REPO_ROOT)}
    # a real sender process that dies (no cleanup) when the THIRD batch has been accepted by the
    # server but not yet journalled: batches are 1 + 5 + 5 messages, so 6 are marked sent, 5 are in flight
    code = ("import os, alerts.outbox as ob\n"
            "real = ob._mark_outcomes\n"
            "seen = []\n"
            "def crash(con, outcomes, *a):\n"
            "    seen.append(1)\n"
            "    if len(seen) == 3:\n"
            "        os._exit(17)\n"
            "    return real(con, outcomes, *a)\n"
            "ob._mark_outcomes = crash\n"
            "ob.send_pending()\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, timeout=120)
    assert proc.returncode == 17, proc.stderr.decode()[-2000:]
    assert smtp_sink.handler.received == 11
    status = dict(warehouse.execute("select status, count(*) from email_outbox group by all").fetchall())
    assert status == {"sent": 6, "pending": n - 6}
    unfinished = warehouse.execute("""
        select count(*) from email_attempts a where outcome = 'sending'
          and not exists (select 1 from email_attempts b where b.message_id = a.message_id and b.outcome = 'sent')
        """).fetchone()[0]
    assert unfinished == 5  # journalled before sending, never marked

    # resume once the dead sender's lease expired: the 5 in-flight messages are re-sent with the
    # same Message-ID (the sink keeps one copy), the never-claimed ones are sent for the first time
    later = datetime.now(UTC) + timedelta(seconds=outbox.lease_seconds(smtp_settings) + 1)
    r = outbox.send_pending(_parallel(smtp_settings), warehouse, now=later)
    assert r["recovered"] == 5 and r["sent"] == n - 6 and r["errors"] == 0
    assert smtp_sink.handler.received == n + 5 and smtp_sink.handler.duplicates == 5
    msgs = smtp_sink.messages()
    assert len(msgs) == n and len({m["Message-ID"] for m in msgs}) == n
    names = {"06": "California", "36": "New York", "48": "Texas"}
    assert _pairs(msgs) == sorted((names[r], to) for r in REGIONS for to in RECIPIENTS)
    assert warehouse.execute("select count(*) from email_outbox where status = 'sent'").fetchone()[0] == n
    sent_marks = warehouse.execute("select count(*), count(distinct message_id) from email_attempts "
                                   "where outcome = 'sent'").fetchone()
    assert sent_marks == (n, n)
    assert outbox.send_pending(_parallel(smtp_settings), warehouse, now=later + timedelta(hours=1))["sent"] == 0
    assert smtp_sink.handler.received == n + 5
