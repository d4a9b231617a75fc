"""Clean shutdown on SIGTERM, SIGINT and SIGHUP: `affectwatch ingest`, `schedule`, `dashboard` and `smtp-sink`
commit their work and leave no process and no listening port behind. Real processes, real broker, real signals.
(`affectwatch demo` stopping every child on SIGTERM is checked on the smoke test's demo run,
tests/test_demo_smoke.py, so that the demo pipeline runs once per suite.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from affectwatch.ports import free_port, wait_until
from affectwatch.settings import REPO_ROOT
from tests.test_demo_smoke import _port_in_use, http_ok


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "affectwatch.cli", *args]


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_ingest_worker_commits_and_exits_on_every_shutdown_signal(ingest_env, kafka_producer, sig):
    from tests.fixtures.kafka import send_raw

    worker = ingest_env.start()
    sent = send_raw(kafka_producer, ingest_env.symptom_topic, [b"not json"] * 5)
    kafka_producer.flush(timeout=30)
    wait_until(lambda: ingest_env.query("select count(*) from dead_letters")[0][0] == sent, 120,
               "the worker to store the batch", proc=worker, log=Path(worker.log_path))
    worker.send_signal(sig)
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, ingest_env.log_tail(worker)
    assert json.loads(out.decode().strip().splitlines()[-1])["dead_letters"] == sent
    committed = ingest_env.query("select coalesce(sum(next_offset), 0) from ingest_offsets where consumer_group = ?",
                                 [ingest_env.group])[0][0]
    assert committed == sent  # the offsets went with the rows


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_scheduler_finishes_its_jobs_and_exits_on_a_signal(settings, smtp_sink, tmp_path, sig):
    from affectwatch.warehouse import connect

    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(settings.data_dir), "AFFECTWATCH_SMTP__PORT": str(smtp_sink.port),
           "AFFECTWATCH_ALERTS__FORECAST_CRON": "0 5 1 1 *", "AFFECTWATCH_ALERTS__DETECT_CRON": "0 6 1 1 *",
           "AFFECTWATCH_ALERTS__DELIVER_CRON": "* * * * *", "AFFECTWATCH_LOG_FORMAT": "json"}
    log = tmp_path / "schedule.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(_cli("schedule"), cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "scheduler started" in log.read_text(errors="replace"), 300, "the scheduler", proc=proc, log=log)
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "scheduler stopped" in log.read_text()
    con = connect(settings, read_only=True)
    try:
        statuses = dict(con.execute("select status, count(*) from scheduler_runs group by 1").fetchall())
    finally:
        con.close()
    assert statuses.get("running", 0) == 0 and statuses.get("interrupted", 0) == 0, statuses


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_dashboard_and_smtp_sink_stop_on_a_signal(tmp_path, sig):
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(tmp_path / "var")}
    env.pop("AFFECTWATCH_DASHBOARD__USERS_FILE", None)
    dash_port, smtp_port = free_port(), free_port()
    log = tmp_path / "dash.log"
    with open(log, "wb") as out:
        dash = subprocess.Popen(_cli("dashboard", "--port", str(dash_port)), cwd=REPO_ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        sink = subprocess.Popen(_cli("smtp-sink", "--dir", str(tmp_path / "mail"), "--port", str(smtp_port)),
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{dash_port}/_stcore/health"), 120, "the dashboard", proc=dash, log=log)
        wait_until(lambda: _port_in_use(smtp_port), 60, "the smtp sink", proc=sink, log=log)
        for proc in (dash, sink):
            proc.send_signal(sig)
        for proc in (dash, sink):
            proc.wait(timeout=60)
    finally:
        for proc in (dash, sink):
            if proc.poll() is None:
                proc.kill()
    assert dash.returncode == 0 and sink.returncode == 0, (dash.returncode, sink.returncode, log.read_text()[-2000:])
    assert not _port_in_use(dash_port) and not _port_in_use(smtp_port)


def test_a_console_that_is_gone_does_not_stop_the_demo_clean_up(monkeypatch, tmp_path):
    """Closing the terminal sends SIGHUP and breaks the demo's stdout/stderr (so does killing `| tee`):
    the clean-up reports each stopped child on the console, and a write that raises must not leave
    the remaining children (and the broker after them) running."""
    import io

    from affectwatch.settings import Settings
    from demo.run import Demo, DemoOptions, _stop_all

    class Gone(io.TextIOBase):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    demo = Demo(Settings(data_dir=tmp_path / "var"), DemoOptions())
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    first, second = demo.children.spawn("first", sleeper), demo.children.spawn("second", sleeper)
    try:
        monkeypatch.setattr(sys, "stdout", Gone())
        monkeypatch.setattr(sys, "stderr", Gone())
        _stop_all(demo)
        monkeypatch.undo()
        assert first.poll() is not None and second.poll() is not None
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
