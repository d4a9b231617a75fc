"""Scheduler: journalled runs, catch-up after downtime, interrupted runs, failing jobs isolated, real CLI run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from affectwatch.settings import REPO_ROOT
from alerts import scheduler
from alerts.scheduler import JobSpec

UTC = timezone.utc


def _runs(con):
    return con.execute("select job, status, detail from scheduler_runs order by started_at").fetchall()


def test_catch_up_runs_missed_jobs_once_and_isolates_failures(warehouse, settings):
    calls = []

    def hourly(s, now):
        calls.append(("hourly", now))
        return {"ok": True}

    def broken(s, now):
        raise RuntimeError("forecast backend unavailable")

    jobs = [JobSpec("broken", "0 5 * * *", broken, 60, "slow"), JobSpec("hourly", "15 * * * *", hourly, 60, "slow")]
    t0 = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)
    out = scheduler.catch_up(settings, jobs, now=t0)  # first start: nothing has ever run
    assert [(o["job"], o["status"]) for o in out] == [("broken", "error"), ("hourly", "ok")]
    runs = _runs(warehouse)
    assert [(j, st) for j, st, _ in runs] == [("broken", "error"), ("hourly", "ok")]
    assert "forecast backend unavailable" in json.loads(runs[0][2])["error"]

    # the ok run was journalled at real time; pretend it started at t0 so the cron arithmetic is exact
    warehouse.execute("update scheduler_runs set started_at = ? where job = 'hourly'", [t0])
    in_same_hour = t0 + timedelta(minutes=40)  # 11:00 < next fire 11:15 (America/New_York offsets whole hours)
    assert [j.name for j in scheduler.due_jobs(jobs, settings, in_same_hour)] == ["broken"]  # failed -> retried
    after_restart = t0 + timedelta(hours=3)  # down across 11:15, 12:15, 13:15: one coalesced catch-up run
    scheduler.catch_up(settings, [jobs[1]], now=after_restart)
    assert [c[0] for c in calls] == ["hourly", "hourly"]
    assert scheduler.due_jobs([jobs[1]], settings, after_restart) == []


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(warehouse, settings):
    warehouse.execute("insert into scheduler_runs values ('detect', ?, null, 'running', null)",
                      [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)])
    assert scheduler.mark_interrupted(settings) == 1
    assert _runs(warehouse)[0][:2] == ("detect", "interrupted")
    # an interrupted run is not a success: the job is due again
    job = JobSpec("detect", "15 * * * *", lambda s, n: {}, 60, "slow")
    assert [j.name for j in scheduler.due_jobs([job], settings, datetime(2026, 3, 2, 9, 5, tzinfo=UTC))] == ["detect"]


def test_invalid_cron_is_named(settings):
    with pytest.raises(ValueError, match=r"invalid cron expression for job 'detect': '61 \* \* \* \*'"):
        scheduler._trigger(JobSpec("detect", "61 * * * *", lambda s, n: {}, 60, "slow"), "UTC")


@pytest.mark.slow
def test_schedule_command_catches_up_all_jobs_then_survives_a_restart(settings, smtp_sink):
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(settings.data_dir), "AFFECTWATCH_SMTP__PORT": str(smtp_sink.port),
           "AFFECTWATCH_ALERTS__FORECAST_CRON": "0 5 1 1 *", "AFFECTWATCH_ALERTS__DETECT_CRON": "0 6 1 1 *",
           "AFFECTWATCH_ALERTS__DELIVER_CRON": "0 7 1 1 *", "AFFECTWATCH_ANALYST__REFRESH_CRON": "0 8 1 1 *",
           "AFFECTWATCH_LOG_FORMAT": "json"}
    exe = str(REPO_ROOT / ".venv" / "bin" / "affectwatch")
    cmd = [exe, "schedule", "--run-for", "1"] if os.path.exists(exe) else \
        [sys.executable, "-m", "affectwatch.cli", "schedule", "--run-for", "1"]
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, timeout=600)  # generous: shared machine
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    from affectwatch.warehouse import connect

    con = connect(settings)
    try:
        runs = {j: st for j, st, _ in _runs(con)}
        assert set(runs) == {"forecast", "detect", "deliver", "analyst-refresh"}  # first start: every job caught up
        assert runs["detect"] == "ok" and runs["deliver"] == "ok" and runs["analyst-refresh"] == "ok"
        # restart: nothing is due again (yearly crons) except a job whose last run failed
        due = {j.name for j in scheduler.due_jobs(scheduler.default_jobs(
            settings.model_copy(update={"alerts": settings.alerts.model_copy(update={
                "forecast_cron": "0 5 1 1 *", "detect_cron": "0 6 1 1 *", "deliver_cron": "0 7 1 1 *"}),
                "analyst": settings.analyst.model_copy(update={"refresh_cron": "0 8 1 1 *"})})),
            settings, datetime.now(UTC))}
        assert due == {j for j, st in runs.items() if st != "ok"}
    finally:
        con.close()
