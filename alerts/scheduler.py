"""`affectwatch schedule`: forecast refresh, detection and email delivery on cron-like schedules.

APScheduler (3.x) fires the jobs; the *state* lives in the warehouse, so the scheduler survives
restarts without a separate job store:

* every run is journalled in ``scheduler_runs`` (running -> ok | error; a run left ``running``
  by a killed process is marked ``interrupted`` at the next start);
* at start, ``catch_up`` runs at once every job whose most recent scheduled time since its last
  successful run has passed (a missed 05:00 forecast runs when the scheduler comes back; several
  missed runs coalesce into one);
* delivery is idempotent by construction (outbox Message-IDs), so the minute job also catches up
  digests whose local time passed while the scheduler was down, and retries with backoff.

While running, APScheduler's ``coalesce`` and ``misfire_grace_time`` handle late fires (e.g. a
long forecast run delaying the next detection); jobs never overlap themselves (max_instances=1).
Forecast and detection share one worker; delivery has its own so that urgent mail is not
held up by a long forecast run.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings
from affectwatch.warehouse import session

log = get_logger(__name__)


@dataclass(frozen=True)
class JobSpec:
    name: str
    cron: str
    func: Callable[[Settings, datetime], dict]
    misfire_grace_s: int
    executor: str  # 'slow' (forecast, detection) or 'default' (delivery)


def forecast_job(settings: Settings, now: datetime) -> dict:
    """Forecast refresh (analytics.forecast_run.run_latest); a failure there never stops other jobs."""
    from analytics.forecast_run import run_latest

    return run_latest(settings=settings)


def detect_job(settings: Settings, now: datetime) -> dict:
    from alerts.engine import run_once

    return run_once(settings, now=now)


def deliver_job(settings: Settings, now: datetime) -> dict:
    from alerts.outbox import deliver

    return deliver(settings, now=now)


def analyst_refresh_job(settings: Settings, now: datetime) -> dict:
    """Publish the suppressed marts to the analyst store (analyst.store.refresh)."""
    from analyst.store import refresh

    return refresh(settings, now=now)


def default_jobs(settings: Settings) -> list[JobSpec]:
    a = settings.alerts
    return [
        JobSpec("forecast", a.forecast_cron, forecast_job, misfire_grace_s=6 * 3600, executor="slow"),
        JobSpec("detect", a.detect_cron, detect_job, misfire_grace_s=1800, executor="slow"),
        JobSpec("deliver", a.deliver_cron, deliver_job, misfire_grace_s=120, executor="default"),
        JobSpec("analyst-refresh", settings.analyst.refresh_cron, analyst_refresh_job, misfire_grace_s=1800,
                executor="slow"),
    ]


def _trigger(spec: JobSpec, tz: str):
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(spec.cron, timezone=ZoneInfo(tz))
    except ValueError as exc:
        raise ValueError(f"invalid cron expression for job {spec.name!r}: {spec.cron!r} ({exc})") from None


def _journal_start(con, job: str, now: datetime) -> datetime:
    started = datetime.now(timezone.utc)
    con.execute("insert into scheduler_runs (job, started_at, finished_at, status, detail) values (?, ?, null, 'running', ?)",
                [job, started, json.dumps({"scheduled_for": now.isoformat()})])
    return started


def _journal_end(con, job: str, started: datetime, status: str, detail: dict) -> None:
    con.execute("update scheduler_runs set finished_at = ?, status = ?, detail = ? where job = ? and started_at = ?",
                [datetime.now(timezone.utc), status, json.dumps(detail, default=str)[:4000], job, started])


def run_job(spec: JobSpec, settings: Settings, now: datetime | None = None) -> dict:
    """Run one job, journalled in scheduler_runs; exceptions are logged and recorded, never raised."""
    now = now or datetime.now(timezone.utc)
    with session(settings) as con:
        started = _journal_start(con, spec.name, now)
        t0 = time.perf_counter()
        try:
            result = spec.func(settings, now) or {}
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - a failing job must not kill the scheduler
            result = {"error": f"{type(exc).__name__}: {exc}"}
            status = "error"
            log.error("scheduled job failed", job=spec.name, error=result["error"][:500])
        result = {**result, "seconds": round(time.perf_counter() - t0, 3)}
        _journal_end(con, spec.name, started, status, result)
        log.info("scheduled job finished", job=spec.name, status=status, seconds=result["seconds"])
        return {"job": spec.name, "status": status, **result}


def mark_interrupted(settings: Settings) -> int:
    """Runs left 'running' by a process that died are closed as 'interrupted'."""
    with session(settings) as con:
        n = con.execute("select count(*) from scheduler_runs where status = 'running'").fetchone()[0]
        if n:
            con.execute("update scheduler_runs set status = 'interrupted', finished_at = ? where status = 'running'",
                        [datetime.now(timezone.utc)])
            log.warning("previous scheduler runs were interrupted", count=n)
        return n


def due_jobs(jobs: list[JobSpec], settings: Settings, now: datetime) -> list[JobSpec]:
    """Jobs whose latest scheduled fire time (after their last successful start) has passed."""
    with session(settings) as con:
        last = dict(con.execute("select job, max(started_at) from scheduler_runs where status = 'ok' group by job").fetchall())
    due = []
    for spec in jobs:
        prev = last.get(spec.name)
        if prev is None:
            due.append(spec)
            continue
        prev = prev if prev.tzinfo else prev.replace(tzinfo=timezone.utc)
        nxt = _trigger(spec, settings.alerts.timezone).get_next_fire_time(None, prev)
        if nxt is not None and nxt <= now:
            due.append(spec)
    return due


def catch_up(settings: Settings | None = None, jobs: list[JobSpec] | None = None, now: datetime | None = None) -> list[dict]:
    """Run, in order, every job that missed its schedule while no scheduler was running."""
    s = settings or get_settings()
    jobs = jobs if jobs is not None else default_jobs(s)
    now = now or datetime.now(timezone.utc)
    mark_interrupted(s)
    out = []
    for spec in due_jobs(jobs, s, now):
        log.info("catching up missed job", job=spec.name)
        out.append(run_job(spec, s, now))
    return out


def build_scheduler(settings: Settings, jobs: list[JobSpec], blocking: bool = True):
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    cls = BlockingScheduler if blocking else BackgroundScheduler
    sched = cls(
        timezone=ZoneInfo(settings.alerts.timezone),
        executors={"default": ThreadPoolExecutor(1), "slow": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    for spec in jobs:
        sched.add_job(
            lambda spec=spec: run_job(spec, settings),
            trigger=_trigger(spec, settings.alerts.timezone),
            id=spec.name, name=spec.name, executor=spec.executor,
            misfire_grace_time=spec.misfire_grace_s, replace_existing=True,
        )
    return sched


def serve(settings: Settings | None = None, run_for: float | None = None, jobs: list[JobSpec] | None = None) -> None:
    """Catch up missed jobs, then run the schedule (forever, or for ``run_for`` seconds).

    SIGTERM, SIGINT and SIGHUP stop it cleanly: no new job starts, running jobs finish and are
    journalled (``sched.shutdown(wait=True)``), then the process exits."""
    import threading

    from affectwatch.processes import shutdown_signals
    from affectwatch.warehouse import migrate

    s = settings or get_settings()
    jobs = jobs if jobs is not None else default_jobs(s)
    for spec in jobs:
        _trigger(spec, s.alerts.timezone)  # fail fast on a bad cron expression
    stop = threading.Event()
    with shutdown_signals(lambda signum: stop.set()):
        migrate(settings=s)
        catch_up(s, jobs)
        if stop.is_set():
            log.info("scheduler stopped before it started")
            return
        sched = build_scheduler(s, jobs, blocking=False)
        sched.start()
        log.info("scheduler started", jobs={j.name: j.cron for j in jobs}, timezone=s.alerts.timezone)
        try:
            stop.wait(run_for)
        finally:
            log.info("scheduler stopping; waiting for running jobs")
            sched.shutdown(wait=True)
            log.info("scheduler stopped")
