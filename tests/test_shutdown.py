"""Clean shutdown on SIGTERM, SIGINT and SIGHUP: `affectwatch demo`, `ingest`, `schedule`, `dashboard` and
`smtp-sink` stop their children, commit their work and leave no process and no listening port behind.
Real processes, real broker, real signals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from affectwatch.settings import REPO_ROOT
from ingest.broker import free_port
from tests.test_demo_smoke import _port_in_use, demo_env


def _wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}: "
                                 + (log.read_text(errors="replace")[-3000:] if log else ""))
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: " + (log.read_text(errors="replace")[-3000:] if log else ""))
        time.sleep(0.5)


def _http_ok(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "affectwatch.cli", *args]


def _alive(procs: list[psutil.Process]) -> list[str]:
    """The processes still alive (zombies count as gone: they hold nothing)."""
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.timeout(2400)  # the whole demo pipeline runs first; on a loaded 2-core machine that takes a while
def test_sigterm_to_the_demo_stops_every_child_and_frees_every_port(tmp_path):
    """`kill <demo pid>` while it serves: broker, ingest worker (if any), SMTP sink and Streamlit all stop."""
    env, ports = demo_env(tmp_path / "var")
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / "demo.log"
    cmd = _cli("demo", "--start", "2022-09-03", "--end", "2023-01-14", "--regions", "06,48",
               "--devices-per-region", "3", "--backtest-from", "2022-12-10", "--backtest-to", "2023-01-07")
    with open(log, "wb") as out:
        demo = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    children: list[psutil.Process] = []
    try:
        _wait_for(lambda: "Press Ctrl-C" in log.read_text(errors="replace"), 2000, "the demo to serve", demo, log)
        assert _http_ok(f"http://127.0.0.1:{ports['dashboard']}/_stcore/health")
        assert all(_port_in_use(p) for p in ports.values()), ports
        children = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "kafka.Kafka" in names and "smtp-sink" in names and "dashboard.serve" in names and " ingest" in names, names

        t0 = time.monotonic()
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=180)
        print(f"demo stopped {time.monotonic() - t0:.1f} s after SIGTERM")
    finally:
        if demo.poll() is None:  # a failure above: stop it the way under test, then for sure
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=120)
            except subprocess.TimeoutExpired:
                demo.kill()
        leftover = _alive(children)
        for proc in children:  # only after the check: never leave a broker behind a failed test
            try:
                proc.kill()  # psutil refuses if the pid was reused meanwhile
            except psutil.NoSuchProcess:
                pass
    text = log.read_text(errors="replace")
    assert demo.returncode == 0, text[-3000:]
    assert "SIGTERM: stopping every process the demo started" in text
    assert "stopped dashboard" in text and "stopped smtp-sink" in text and "stopped Kafka broker" in text
    assert not leftover, leftover
    for name, port in ports.items():
        assert not _port_in_use(port), f"{name} still listening on {port}"


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_ingest_worker_commits_and_exits_on_every_shutdown_signal(ingest_env, kafka_producer, sig):
    from tests.fixtures.kafka import send_raw

    worker = ingest_env.start()
    sent = send_raw(kafka_producer, ingest_env.symptom_topic, [b"not json"] * 5)
    kafka_producer.flush(timeout=30)
    _wait_for(lambda: ingest_env.query("select count(*) from dead_letters")[0][0] == sent, 120,
              "the worker to store the batch", worker, Path(worker.log_path))
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
        _wait_for(lambda: "scheduler started" in log.read_text(errors="replace"), 300, "the scheduler", proc, log)
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
        _wait_for(lambda: _http_ok(f"http://127.0.0.1:{dash_port}/_stcore/health"), 120, "the dashboard", dash, log)
        _wait_for(lambda: _port_in_use(smtp_port), 60, "the smtp sink", sink, log)
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
