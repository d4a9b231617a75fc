"""Email delivery through the outbox to a real aiosmtpd server: content, inline image, retries, no duplicate."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from affectwatch.settings import REPO_ROOT
from alerts import lifecycle, outbox
from alerts.subscriptions import subscribe
from tests.alerts_data import baseline_counts, decision, seed_weekly

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _html_and_images(msg):
    html = msg.get_body(preferencelist=("html",))
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    return html.get_content(), images


def _attempts(con, mid):
    return [r[0] for r in con.execute(
        "select outcome from email_attempts where message_id = ? order by attempt, case outcome when 'sending' then 0 else 1 end",
        [mid]).fetchall()]


def _queue_one(con, settings, region="06", recipient="epi@health.example"):
    subscribe(recipient, region, "yellow", "immediate", con=con, now=NOW - timedelta(days=1))
    lifecycle.apply(con, [decision(region, "red")], NOW)
    assert outbox.queue_immediate(con, settings, NOW) == 1
    return con.execute("select message_id from email_outbox").fetchone()[0]


@pytest.mark.slow
def test_immediate_email_from_detection_arrives_with_evidence_and_inline_image(warehouse, smtp_settings, smtp_sink):
    from alerts.engine import run_once

    last = date(2026, 2, 22)  # newest weekly period: 2026-02-22 .. 2026-02-28
    for i, region in enumerate(("06", "36", "48")):
        counts = baseline_counts(60, 40, seed=i)
        if region == "06":
            counts[-1] = 140  # a clear excess in the newest week
        seed_weekly(warehouse, region, counts, last, report_lag_days=1)
    subscribe("official@health.example", "06,36", "yellow", "immediate", con=warehouse, now=NOW - timedelta(days=3))
    subscribe("red-only@health.example", "36", "red", "immediate", con=warehouse, now=NOW - timedelta(days=3))

    summary = run_once(smtp_settings, now=NOW, con=warehouse)
    assert summary["signals"]["flu_admissions"]["red"] == 1
    out = outbox.deliver(smtp_settings, now=NOW, con=warehouse)
    assert out["sent"] == 1 and out["queued_immediate"] == 1

    msgs = smtp_sink.messages()
    assert len(msgs) == 1
    msg = msgs[0]
    assert msg["To"] == "official@health.example"
    alert = warehouse.execute(
        "select alert_id, level, detectors, statistic, threshold, p_value, data_start, data_end, provisional "
        "from alerts where region_id = '06' and signal = 'flu_admissions'").fetchone()
    alert_id, level, detectors, stat, thr, p, start, end, prov = alert
    assert level == "red" and prov is True
    text = msg.get_body(preferencelist=("plain",)).get_content()
    for needle in ("Region:        California (06)", "Level:         red", f"{stat:,.2f}", f"{thr:,.2f}",
                   f"Data period:   {start} to {end}", "Provisional:   yes", alert_id):
        assert needle in text, needle
    for d in detectors.split(","):
        assert d in text
    p_txt = "< 0.0001" if p < 0.0001 else f"{p:.4f}"
    assert f"p-value:       {p_txt}" in text
    assert "RED" in msg["Subject"] and "provisional" in msg["Subject"]

    html, images = _html_and_images(msg)
    assert len(images) == 1
    png = images[0]
    cid = png["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    assert png.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(preferencelist=("html",)).get_content_type() == "text/html"

    # a second pass on the same data sends nothing new
    outbox.deliver(smtp_settings, now=NOW + timedelta(minutes=1), con=warehouse)
    from alerts.engine import run_once as again
    again(smtp_settings, now=NOW + timedelta(minutes=2), con=warehouse)
    assert outbox.deliver(smtp_settings, now=NOW + timedelta(minutes=3), con=warehouse)["sent"] == 0
    assert len(smtp_sink.messages()) == 1 and smtp_sink.handler.received == 1


def test_daily_digest_arrives_once_at_local_time(warehouse, smtp_settings, smtp_sink):
    sub = subscribe("digest@health.example", "*", "yellow", "digest", "07:30", "America/Chicago",
                    con=warehouse, now=datetime(2026, 3, 1, tzinfo=UTC))
    lifecycle.apply(warehouse, [decision("06", "red"), decision("36", "yellow"),
                                decision("48", "insufficient_data", reason="too_few_devices")], NOW - timedelta(hours=6))
    before = datetime(2026, 3, 2, 13, 29, tzinfo=UTC)  # 07:29 in Chicago (CST, UTC-6)
    after = datetime(2026, 3, 2, 13, 31, tzinfo=UTC)
    assert outbox.deliver(smtp_settings, now=before, con=warehouse)["queued_digests"] == 0
    out = outbox.deliver(smtp_settings, now=after, con=warehouse)
    assert out["queued_digests"] == 1 and out["sent"] == 1
    # later passes the same local day do not queue it again; the next day does
    assert outbox.deliver(smtp_settings, now=after + timedelta(hours=5), con=warehouse)["queued_digests"] == 0
    msgs = smtp_sink.messages()
    assert len(msgs) == 1
    msg = msgs[0]
    assert msg["Subject"] == "[AffectWatch] Daily digest 2026-03-02: 1 red, 1 yellow"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "[RED] flu_admissions in California (06)" in text and "[YELLOW] flu_admissions in New York (36)" in text
    # an insufficient-data record is never an alert, but the digest says where no judgement is possible
    alerts_part, thin_part = text.split("Insufficient data - no judgement possible (never an alert):")
    assert "Texas" not in alerts_part and "- flu_admissions in Texas (48): too_few_devices" in thin_part
    assert "(provisional)" in text and "p-value 0.0004" in text
    html, images = _html_and_images(msg)
    assert len(images) == 2
    for img in images:
        assert f'src="cid:{img["Content-ID"].strip("<>")}"' in html
    row = warehouse.execute("select kind, trigger, subscription_id from email_outbox").fetchone()
    assert row == ("digest", "digest:2026-03-02", sub.subscription_id)


def test_refusing_server_retries_with_exponential_backoff_then_delivers(warehouse, smtp_settings, smtp_sink):
    mid = _queue_one(warehouse, smtp_settings)
    smtp_sink.handler.refuse_code = "451 4.3.0 mailbox busy, try again later"
    t0 = NOW
    r1 = outbox.send_pending(smtp_settings, warehouse, now=t0)
    assert r1["errors"] == 1 and r1["sent"] == 0
    status, attempts, next_at, err = warehouse.execute(
        "select status, attempts, next_attempt_at, last_error from email_outbox").fetchone()
    assert status == "pending" and attempts == 1 and "451" in err
    assert next_at == t0 + timedelta(seconds=0.2)
    # not due yet: nothing is attempted
    assert outbox.send_pending(smtp_settings, warehouse, now=t0 + timedelta(seconds=0.1))["errors"] == 0
    # second refusal (now a 5xx): the delay doubles
    smtp_sink.handler.refuse_code = "554 5.7.1 temporarily rejected"
    t1 = t0 + timedelta(seconds=0.3)
    assert outbox.send_pending(smtp_settings, warehouse, now=t1)["errors"] == 1
    next_at = warehouse.execute("select next_attempt_at from email_outbox").fetchone()[0]
    assert next_at == t1 + timedelta(seconds=0.4)
    smtp_sink.handler.refuse_code = None
    assert outbox.send_pending(smtp_settings, warehouse, now=t1 + timedelta(seconds=0.5))["sent"] == 1
    assert len(smtp_sink.messages()) == 1
    assert _attempts(warehouse, mid) == ["sending", "error", "sending", "error", "sending", "sent"]
    assert warehouse.execute("select status, attempts from email_outbox").fetchone() == ("sent", 3)


def test_server_down_then_back_no_loss(warehouse, smtp_settings, smtp_sink):
    subscribe("a@health.example", "*", "yellow", "immediate", con=warehouse, now=NOW - timedelta(days=1))
    subscribe("b@health.example", "06", "red", "immediate", con=warehouse, now=NOW - timedelta(days=1))
    lifecycle.apply(warehouse, [decision("06", "red"), decision("36", "yellow")], NOW)
    assert outbox.queue_immediate(warehouse, smtp_settings, NOW) == 3
    smtp_sink.stop()
    r = outbox.send_pending(smtp_settings, warehouse, now=NOW)
    assert r["sent"] == 0 and r["errors"] == 1 and r["deferred"] == 2  # one attempt, then the pass stops
    assert outbox.send_pending(smtp_settings, warehouse, now=NOW + timedelta(seconds=1))["errors"] == 1
    smtp_sink.start()
    r = outbox.send_pending(smtp_settings, warehouse, now=NOW + timedelta(seconds=5))
    assert r["sent"] == 3
    got = sorted(m["To"] for m in smtp_sink.messages())
    assert got == ["a@health.example", "a@health.example", "b@health.example"]
    assert warehouse.execute("select count(*) from email_outbox where status = 'sent'").fetchone()[0] == 3


def test_exhausted_attempts_are_failed_not_lost_and_can_be_requeued(warehouse, smtp_settings, smtp_sink):
    s = smtp_settings.model_copy(update={"smtp": smtp_settings.smtp.model_copy(update={"max_attempts": 2})})
    _queue_one(warehouse, s)
    smtp_sink.handler.refuse_code = "452 4.2.2 over quota"
    outbox.send_pending(s, warehouse, now=NOW)
    outbox.send_pending(s, warehouse, now=NOW + timedelta(seconds=1))
    assert warehouse.execute("select status, attempts from email_outbox").fetchone() == ("failed", 2)
    assert outbox.send_pending(s, warehouse, now=NOW + timedelta(hours=1))["errors"] == 0  # failed: left alone
    smtp_sink.handler.refuse_code = None
    assert outbox.retry_failed(warehouse) == 1
    assert outbox.send_pending(s, warehouse, now=NOW + timedelta(hours=1))["sent"] == 1
    assert len(smtp_sink.messages()) == 1


@pytest.mark.slow
def test_crash_after_sending_before_marking_gives_no_duplicate(warehouse, smtp_settings, smtp_sink):
    mid = _queue_one(warehouse, smtp_settings)
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(smtp_settings.data_dir),
           "AFFECTWATCH_SMTP__PORT": str(smtp_sink.port), "AFFECTWATCH_SMTP__HOST": smtp_sink.host,
           "AFFECTWATCH_LOG_FORMAT": "json", "PYTHONPATH": str(REPO_ROOT)}
    # a real process that dies (os._exit, no cleanup) right after the server accepted the message
    code = ("import os, alerts.outbox as ob\n"
            "ob._mark_sent = lambda *a, **k: os._exit(17)\n"
            "ob.send_pending()\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 17, proc.stderr.decode()[-2000:]
    assert smtp_sink.handler.received == 1
    assert _attempts(warehouse, mid) == ["sending"]  # journalled before sending, never marked
    assert warehouse.execute("select status from email_outbox").fetchone()[0] == "pending"

    # restart: while the dead sender's claim (lease) lasts, nobody touches the message ...
    assert outbox.send_pending(smtp_settings, warehouse, now=datetime.now(UTC))["recovered"] == 0
    # ... then the unfinished attempt is recovered by re-sending the same bytes / Message-ID
    later = datetime.now(UTC) + timedelta(seconds=outbox.lease_seconds(smtp_settings) + 1)
    r = outbox.send_pending(smtp_settings, warehouse, now=later)
    assert r["recovered"] == 1 and r["sent"] == 1
    assert smtp_sink.handler.received == 2 and smtp_sink.handler.duplicates == 1
    msgs = smtp_sink.messages()
    assert len(msgs) == 1 and msgs[0]["Message-ID"] == mid  # the recipient holds exactly one copy
    assert _attempts(warehouse, mid) == ["sending", "sending", "sent"]
    note = warehouse.execute("select error from email_attempts where message_id = ? and attempt = 2", [mid]).fetchone()[0]
    assert note.startswith("recovery")
    assert outbox.send_pending(smtp_settings, warehouse, now=later + timedelta(hours=1))["sent"] == 0
    assert smtp_sink.handler.received == 2


def test_a_claimed_message_is_not_sent_by_a_second_sender(warehouse, smtp_settings, smtp_sink, settings):
    from affectwatch.warehouse import connect

    mid = _queue_one(warehouse, smtp_settings)
    other = connect(settings)  # a second process's session on the same warehouse
    try:
        assert outbox._claim(warehouse, {"message_id": mid}, NOW, smtp_settings) == (1, False)
        assert outbox._claim(other, {"message_id": mid}, NOW, smtp_settings) is None  # already claimed
        assert outbox.send_pending(smtp_settings, other, now=NOW + timedelta(seconds=5))["sent"] == 0
    finally:
        other.close()
    assert smtp_sink.handler.received == 0


def _self_signed_cert(folder) -> tuple[str, str]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login_with_password_from_environment(security, tmp_path, monkeypatch, warehouse, settings):
    from affectwatch.settings import Settings
    from alerts.smtp_sink import SmtpSink

    cert, key = _self_signed_cert(tmp_path)
    sink = SmtpSink(tmp_path / "tlsmail", credentials=("alerts", "s3cret!"), tls=(cert, key), tls_mode=security).start()
    smtp = {"port": sink.port, "security": security, "ca_file": cert, "username": "alerts", "backoff_base_s": 0.01}
    try:
        monkeypatch.setenv("AFFECTWATCH_SMTP__PASSWORD", "wrong")
        bad = Settings(data_dir=settings.data_dir, smtp=smtp)
        _queue_one(warehouse, bad)
        assert outbox.send_pending(bad, warehouse, now=NOW)["errors"] == 1
        assert "535" in warehouse.execute("select last_error from email_outbox").fetchone()[0]
        no_ca = Settings(data_dir=settings.data_dir, smtp={**smtp, "ca_file": None})
        assert outbox.send_pending(no_ca, warehouse, now=NOW + timedelta(seconds=1))["errors"] == 1  # untrusted cert
        assert "CERTIFICATE_VERIFY_FAILED" in warehouse.execute("select last_error from email_outbox").fetchone()[0]
        monkeypatch.setenv("AFFECTWATCH_SMTP__PASSWORD", "s3cret!")
        good = Settings(data_dir=settings.data_dir, smtp=smtp)
        assert good.smtp.password.get_secret_value() == "s3cret!"
        assert outbox.send_pending(good, warehouse, now=NOW + timedelta(seconds=2))["sent"] == 1
        assert len(sink.messages()) == 1
    finally:
        sink.stop()


def test_queueing_is_idempotent_and_respects_subscription_filters(warehouse, smtp_settings):
    subscribe("ca@health.example", "06", "yellow", "immediate", con=warehouse, now=NOW - timedelta(days=1))
    subscribe("red@health.example", "*", "red", "immediate", con=warehouse, now=NOW - timedelta(days=1))
    subscribe("late@health.example", "*", "yellow", "immediate", con=warehouse, now=NOW + timedelta(hours=1))
    lifecycle.apply(warehouse, [decision("06", "yellow"), decision("06037", "yellow", signal="ili"),
                                decision("36", "yellow")], NOW)
    assert outbox.queue_immediate(warehouse, smtp_settings, NOW) == 2  # 06 and county 06037 for ca@ only
    assert outbox.queue_immediate(warehouse, smtp_settings, NOW) == 0
    rows = warehouse.execute("select recipient, alert_ids from email_outbox order by alert_ids").fetchall()
    assert rows == [("ca@health.example", "06037|ili|2026-02-28"), ("ca@health.example", "06|flu_admissions|2026-02-28")]
    # escalation to red is a new message (new Message-ID) for both matching recipients
    lifecycle.apply(warehouse, [decision("06", "red")], NOW + timedelta(hours=2))
    assert outbox.queue_immediate(warehouse, smtp_settings, NOW + timedelta(hours=2)) == 3
    triggers = sorted(r[0] for r in warehouse.execute("select trigger from email_outbox").fetchall())
    assert triggers.count("escalated:red:2026-02-28") == 3
    ids = [r[0] for r in warehouse.execute("select message_id from email_outbox").fetchall()]
    assert len(set(ids)) == len(ids) == 5
    detail = json.loads(warehouse.execute(
        "select detail from alert_events where event = 'escalated'").fetchone()[0])
    assert detail["previous_level"] == "yellow"
