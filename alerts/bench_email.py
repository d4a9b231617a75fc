"""`affectwatch bench email`: queue and send N alert emails through the outbox to a real local SMTP sink.

A throw-away DuckLake warehouse gets ``alerts`` red/yellow state alerts (with evidence, so every
message carries its inline sparkline) and ``N / alerts`` immediate subscribers to all regions;
``queue_immediate`` renders the messages (each alert's image drawn once) and ``send_pending``
delivers them to an aiosmtpd sink that the bench starts in its own process (``affectwatch
smtp-sink``: one .eml per Message-ID, a repeated Message-ID acknowledged but not stored), so the
server does not share the sender's interpreter. Printed: queueing rate, sending rate with ``smtp.workers`` connections, and - in the
same run, for a ratio that does not depend on machine load - the rate of a one-connection,
one-message-per-transaction pass (the previous sender) on ``baseline`` messages. Checks that the
sink holds exactly one message per (alert, recipient). Last line: one JSON object.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from affectwatch.logs import get_logger

log = get_logger(__name__)
TARGET_PER_S = 50.0
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
STATES = ("01", "04", "06", "08", "12", "13", "17", "18", "24", "25", "26", "27", "29", "34", "36", "37", "39", "42",
          "47", "48", "51", "53", "55")


def _decision(region: str, level: str, data_end: date):
    from alerts.lifecycle import Decision

    dates = [str(data_end - timedelta(days=7 * (25 - i) + 6)) for i in range(26)]
    obs = [40.0 + (i * 7 % 5) for i in range(25)] + [95.0 if level == "red" else 60.0]
    ev = {"detectors": {"farrington": {"statistic": 3.1, "threshold": 58.0, "p_value": 0.002, "expected": 40.5,
                                       "alarm": True, "reason": None}},
          "series": {"dates": dates, "observed": obs, "threshold": [52.3] * 26}}
    return Decision(region_id=region, signal="ili", level=level, rule="ili", data_start=data_end - timedelta(days=6),
                    data_end=data_end, provisional=True, detectors=["farrington"], statistic=3.1, threshold=58.0,
                    p_value=0.002, observed=obs[-1], expected=40.5, quiet_periods=0, resolve_after=2,
                    cooldown_hours=72, evidence=ev)


def _fill(con, settings, n_alerts: int, n_recipients: int, tag: str) -> None:
    from alerts import lifecycle
    from alerts.subscriptions import subscribe

    for i in range(n_recipients):
        subscribe(f"official{i:04d}.{tag}@health.example", "*", "yellow", "immediate", con=con,
                  now=NOW - timedelta(days=1))
    regions = [STATES[i % len(STATES)] for i in range(n_alerts)]
    data_end = date(2026, 2, 28) if tag == "main" else date(2026, 2, 21)
    lifecycle.apply(con, [_decision(r, "red" if i % 2 else "yellow", data_end) for i, r in enumerate(regions)], NOW)


@contextmanager
def sink_process(folder: Path, deadline_s: float = 180.0):
    """`affectwatch smtp-sink` in a child process on a free loopback port; yields (port, log path)."""
    from affectwatch.ports import free_port, wait_for_port
    from affectwatch.processes import stop_child

    port = free_port()
    log_path = folder.parent / f"{folder.name}-sink.log"
    env = {**os.environ, "AFFECTWATCH_LOG_FORMAT": "json"}
    with log_path.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "affectwatch.cli", "smtp-sink", "--dir", str(folder),
                                 "--port", str(port)], stdout=fh, stderr=fh, env=env)
        try:
            wait_for_port("127.0.0.1", port, deadline_s, "the smtp sink", proc=proc, log=log_path)
            yield port, log_path
        finally:
            stop_child(proc)


def _pass(settings, n_messages: int, n_alerts: int, tag: str, echo) -> dict:
    from affectwatch.warehouse import migrate, session
    from alerts import outbox

    n_alerts = min(n_alerts, len(STATES), n_messages)
    n_recipients = -(-n_messages // n_alerts)
    with tempfile.TemporaryDirectory(prefix=f"aw-bench-mail-{tag}-") as tmp, \
            sink_process(Path(tmp) / "mail") as (port, sink_log):
        s = settings.model_copy(update={"data_dir": Path(tmp) / "var"})
        s = s.model_copy(update={"smtp": s.smtp.model_copy(update={
            "host": "127.0.0.1", "port": port, "security": "none", "username": None})})
        with session(s) as con:
            migrate(con)
            _fill(con, s, n_alerts, n_recipients, tag)
            t0 = time.perf_counter()
            queued = outbox.queue_immediate(con, s, NOW)
            t_queue = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = {"sent": 0, "errors": 0}
            while out["sent"] + out["errors"] < queued:  # send_pending's limit bounds one pass
                r = outbox.send_pending(s, con, now=NOW + timedelta(seconds=1))
                out = {k: out[k] + r[k] for k in out}
                if r["sent"] + r["errors"] == 0:
                    break
            t_send = time.perf_counter() - t0
            stored = len(list((Path(tmp) / "mail").glob("*.eml")))
            dup = sink_log.read_text(errors="replace").count("duplicate message ignored")
    return {"queued": queued, "sent": out["sent"], "errors": out["errors"], "stored": stored, "duplicates": dup,
            "queue_s": t_queue, "send_s": t_send, "alerts": n_alerts, "recipients": n_recipients}


def run_bench(messages: int = 1000, alerts: int = 20, workers: int = 4, batch_size: int = 200, baseline: int = 50,
              echo=print) -> dict:
    from affectwatch.settings import get_settings

    base = get_settings()
    fast = base.model_copy(update={"smtp": base.smtp.model_copy(update={"workers": workers, "batch_size": batch_size})})
    main = _pass(fast, messages, alerts, "main", echo)
    rate = main["sent"] / main["send_s"] if main["send_s"] else 0.0
    echo(f"queued {main['queued']} messages ({main['alerts']} alerts x {main['recipients']} recipients) in "
         f"{main['queue_s']:.2f}s ({main['queued'] / max(main['queue_s'], 1e-9):.0f}/s, images drawn once per alert)")
    echo(f"sent {main['sent']} in {main['send_s']:.2f}s with {workers} SMTP connections, batches of {batch_size}: "
         f"{rate:.1f} messages/s; sink stored {main['stored']}, duplicates {main['duplicates']}")
    result = {"bench": "email", "messages": main["sent"], "queued": main["queued"], "errors": main["errors"],
              "stored": main["stored"], "duplicates": main["duplicates"], "workers": workers, "batch_size": batch_size,
              "queue_s": round(main["queue_s"], 3), "queue_per_s": round(main["queued"] / max(main["queue_s"], 1e-9), 1),
              "send_s": round(main["send_s"], 3), "messages_per_s": round(rate, 1), "target_per_s": TARGET_PER_S}
    if baseline:
        slow = base.model_copy(update={"smtp": base.smtp.model_copy(update={"workers": 1, "batch_size": 1})})
        b = _pass(slow, baseline, alerts, "base", echo)
        b_rate = b["sent"] / b["send_s"] if b["send_s"] else 0.0
        echo(f"same run, one connection and one transaction per message: {b['sent']} in {b['send_s']:.2f}s = "
             f"{b_rate:.1f} messages/s (speed-up x{rate / max(b_rate, 1e-9):.1f})")
        result.update(baseline_messages=b["sent"], baseline_per_s=round(b_rate, 1),
                      speedup=round(rate / max(b_rate, 1e-9), 2))
    result["exactly_once"] = main["stored"] == main["queued"] == main["sent"] and main["duplicates"] == 0
    result["meets_target"] = rate >= TARGET_PER_S and result["exactly_once"]
    echo(json.dumps(result))
    return result
