"""`affectwatch demo`: the whole system on real data, one command.

Starts the local Kafka broker, loads the vendored real symptom data (ILINet, NSSP ED-visit shares),
runs the device-fleet simulator in the `lead` scenario against the real FluSight admissions series
(affect data are SIMULATED; the admissions it also emits are the real values), ingests everything
through Kafka, computes forecasts, backtests and the affect lift, raises alerts, delivers emails to
a local SMTP sink (.eml files) and starts the dashboard. A re-run reuses what is there; Ctrl-C,
SIGTERM (`kill`, `docker stop`) or SIGHUP stops every process the demo started (broker included).

Each step is one small function; `run_demo` only orders them.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import typer

from affectwatch.logs import get_logger
from affectwatch.processes import Supervisor, say, shutdown_signals
from affectwatch.progress import progress
from affectwatch.settings import REPO_ROOT, Settings, get_settings

log = get_logger(__name__)

DATA = REPO_ROOT / "data"
ADMISSIONS_CSV = DATA / "flusight" / "target-hospital-admissions.csv"
ED_SHARE_CSV = DATA / "flusight" / "target-ed-visits-prop.csv"
ILI_CSV = DATA / "ili" / "ILINet_states_2010w40-2023w39.csv"
DEMO_USER = "demo"
DEMO_RECIPIENT = "health.officer@demo.affectwatch.local"
SIMULATED_NOTE = "Affect data in this demo are SIMULATED (device-fleet simulator, `lead` scenario)."


@dataclass
class DemoOptions:
    start: str = "2022-02-05"
    end: str = "2023-09-30"
    regions: str = ""  # empty = every state in the admissions series
    devices_per_region: int = 6
    county_states: str = "09,25,44"  # their counties and H3 cells too (CT, MA, RI): county map + H3 view
    h3_resolution: int = 4
    window_minutes: int = 240
    lead_days: int = 14
    seed: int = 7
    backtest_from: str = "2022-10-15"
    backtest_to: str = "2023-05-27"
    affect: str = "simulator"  # simulator (SIMULATED device affect) | survey (REAL CTIS survey affect, no simulator)

    def replay_now(self) -> str:
        """The demo's 'now' for alerting: 23:00 UTC on the last simulated day."""
        return f"{self.end}T23:00:00+00:00"

    def simulation_key(self) -> dict:
        d = asdict(self)
        d.pop("backtest_from")
        d.pop("backtest_to")
        d.pop("affect")
        return d


@dataclass
class Demo:
    """Processes the demo started (stopped on exit) and where its state lives."""

    settings: Settings
    options: DemoOptions
    children: Supervisor = field(default_factory=Supervisor)
    started_broker: bool = False

    @property
    def dir(self) -> Path:
        return self.settings.data_dir / "demo"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def mail_dir(self) -> Path:
        return self.dir / "mail"

    @property
    def users_file(self) -> Path:
        return self.dir / "users.yaml"

    def state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def save_state(self, **updates) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state() | updates, indent=2, default=str))


# -- helpers -----------------------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "affectwatch.cli", *args]


def _step(title: str) -> None:
    typer.secho(f"\n==> {title}", fg=typer.colors.CYAN, bold=True)


_children: Supervisor | None = None  # the running demo's, for the foreground steps


def _run(*args: str, check: bool = True) -> int:
    """Run one `affectwatch` command in the foreground (its progress bars show on the terminal);
    a shutdown signal meanwhile stops it gracefully."""
    log.debug("demo command", args=" ".join(args))
    return (_children or Supervisor()).run(args[0], _cli(*args), check=check, cwd=REPO_ROOT)


def _spawn(demo: Demo, name: str, *args: str, log_name: str | None = None) -> subprocess.Popen:
    """Start a long-running `affectwatch` command in the background; its output goes to a log file."""
    demo.dir.mkdir(parents=True, exist_ok=True)
    out = open(demo.dir / f"{log_name or name}.log", "ab")
    with out:
        return demo.children.spawn(name, _cli(*args), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)


def _stop_all(demo: Demo) -> None:
    """Stop every child, then the broker; reports on the console if it is still there (closing the
    terminal sends SIGHUP and breaks stdout: the clean-up must still reach the broker)."""
    demo.children.stop_all(echo=say)
    if demo.started_broker:
        from ingest.broker import default_broker

        default_broker(demo.settings).stop()
        demo.started_broker = False
        say("stopped Kafka broker")


def _wait_http(url: str, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def _count(settings: Settings, sql: str, params: list | None = None) -> int:
    from affectwatch.warehouse import session

    with session(settings, read_only=True) as con:
        return int(con.execute(sql, params or []).fetchone()[0])


# -- steps ---------------------------------------------------------------------------------------------


def start_broker(demo: Demo) -> None:
    _step("Kafka broker (Apache Kafka 4.x, KRaft, local JDK)")
    from ingest.broker import default_broker

    broker = default_broker(demo.settings)
    if broker.running:
        typer.echo(f"reusing the running broker at {broker.bootstrap}")
        return
    demo.started_broker = True  # before start(): a signal during the start-up still stops it
    broker.start(topics=[demo.settings.kafka.affect_topic, demo.settings.kafka.symptom_topic])
    typer.echo(f"broker ready at {broker.bootstrap}")


def prepare_warehouse(demo: Demo) -> None:
    _step("Warehouse (DuckLake: SQLite catalog + Parquet)")
    _run("warehouse", "migrate")
    typer.echo(f"catalog: {demo.settings.catalog}\ndata:    {demo.settings.data_path}")


def load_real_symptoms(demo: Demo) -> None:
    _step("Real symptom data: ILINet (ili) and NSSP ED-visit shares (ed_flu_share)")
    # Historical backfill: date each week as published a few days after it ends (ILINet: Friday after),
    # so as-of queries and the alert replay see what was known at the time.
    _run("load-symptoms", str(ILI_CSV), "--syndrome", "ili", "--format", "ilinet", "--reported-lag-days", "6")
    _run("load-symptoms", str(ED_SHARE_CSV), "--syndrome", "ed_flu_share", "--format", "flusight",
         "--reported-lag-days", "5")


def load_survey_affect(demo: Demo) -> None:
    _step("Real survey affect (REAL: CTIS via Delphi COVIDcast, 2021-05..2022-05) instead of the simulator")
    from ingest.affect_commands import AFFECT_FILES

    _run("load-affect", *map(str, AFFECT_FILES), "--format", "covidcast")
    _run("forecast", "run", "--syndrome", "ili")


def simulate_and_ingest(demo: Demo) -> None:
    _step("Device fleet -> Kafka -> ingest worker -> warehouse  (" + SIMULATED_NOTE + ")")
    o = demo.options
    key = o.simulation_key()
    done = demo.state().get("simulation")
    windows_now = _count(demo.settings, "select count(*) from affect_windows")
    if done == key and windows_now > 0:
        typer.echo(f"reusing {windows_now:,} ingested windows from an earlier run with the same options")
        return
    worker = _spawn(demo, "ingest", "ingest")
    args = ["simulate", "--scenario", "lead", "--start", o.start, "--end", o.end,
            "--devices-per-region", str(o.devices_per_region), "--window-minutes", str(o.window_minutes),
            "--lead-days", str(o.lead_days), "--seed", str(o.seed)]
    if o.regions:
        args += ["--regions", o.regions]
    if o.county_states:
        args += ["--counties", o.county_states, "--h3-resolution", str(o.h3_resolution)]
    _run(*args)
    _wait_for_ingest(demo, worker)
    demo.save_state(simulation=key)


def _wait_for_ingest(demo: Demo, worker: subprocess.Popen) -> None:
    """Wait until the worker has caught up with the log end (no lag), with a progress bar."""
    from ingest import backlog

    s = demo.settings
    topics = [s.kafka.affect_topic, s.kafka.symptom_topic]
    total = backlog.log_end(s, topics)
    with progress(total=total, unit="msg", desc="ingested (Kafka offsets committed to the warehouse)") as bar:
        while True:
            done = backlog.committed(s, s.kafka.group_id, topics)
            bar.update(done - bar.n)
            if done >= total:
                break
            if worker.poll() is not None:
                raise RuntimeError(f"the ingest worker exited with code {worker.returncode}; see {demo.dir/'ingest.log'}")
            time.sleep(1.0)
    windows = _count(s, "select count(*) from affect_windows")
    dead = _count(s, "select count(*) from dead_letters")
    typer.echo(f"warehouse: {windows:,} affect windows (SIMULATED), {dead:,} dead letters")


def forecasts_and_backtests(demo: Demo) -> None:
    _step("Forecasts (23 quantiles, horizons 0-3 weeks), backtest and the affect lift (SIMULATED affect)")
    o = demo.options
    _run("forecast", "run", "--syndrome", "flu_admissions")
    _run("forecast", "run", "--syndrome", "ili")
    target_csv, affect_csv = export_backtest_inputs(demo)
    hub = demo.dir / "backtest_hub.csv"
    _run("forecast", "backtest", "--target-csv", str(target_csv), "--start", o.backtest_from, "--end", o.backtest_to,
         "--latency-weeks", "1", "--models", "baseline,qr,qr_affect", "--affect-csv", str(affect_csv),
         "--affect-features", "distress_share,arousal,valence", "--syndrome", "flu_admissions", "--out", str(hub))
    _run("forecast", "score", "--forecasts", str(hub), "--truth", str(target_csv), "--out-dir",
         str(demo.dir / "scores"), "--to-warehouse")
    _run("forecast", "lift", "--forecasts", str(hub), "--truth", str(target_csv), "--affect-csv", str(affect_csv),
         "--symptom-model", "qr", "--fused-model", "qr_affect", "--simulated", "--out",
         str(demo.dir / "affect_lift.csv"), "--to-warehouse")


def export_backtest_inputs(demo: Demo) -> tuple[Path, Path]:
    """Write the warehouse's weekly admissions (latest revision) and weekly affect features as CSVs."""
    import pandas as pd

    from affectwatch.warehouse import session
    from analytics.panels import affect_features, symptom_series

    with session(demo.settings, read_only=True) as con:
        target = symptom_series(con, "flu_admissions")
        affect = affect_features(con, settings=demo.settings)
    target_csv, affect_csv = demo.dir / "target_flu_admissions.csv", demo.dir / "affect_features.csv"
    target[["date", "location", "value"]].assign(date=lambda d: pd.to_datetime(d["date"]).dt.date).to_csv(target_csv, index=False)
    affect.assign(date=lambda d: pd.to_datetime(d["date"]).dt.date).to_csv(affect_csv, index=False)
    typer.echo(f"backtest inputs: {target_csv} ({len(target)} rows), {affect_csv} ({len(affect)} rows, SIMULATED)")
    return target_csv, affect_csv


def alerts_and_email(demo: Demo) -> None:
    _step("Alerts and email (local SMTP sink saving .eml files)")
    s = demo.settings
    demo.mail_dir.mkdir(parents=True, exist_ok=True)
    _spawn(demo, "smtp-sink", "smtp-sink", "--dir", str(demo.mail_dir), "--port", str(s.smtp.port))
    time.sleep(1.5)
    subscribe_demo_recipient(demo)
    # Replay: evaluate as of the end of the simulated period (the affect data are real-time; symptom
    # reports for the last week are not yet published then).
    _run("alerts", "run-once", "--now", demo.options.replay_now())
    emails = sorted(demo.mail_dir.glob("*.eml"))
    typer.echo(f"{len(emails)} email(s) in {demo.mail_dir}")
    for path in emails[:5]:
        typer.echo(f"  {path}")


def subscribe_demo_recipient(demo: Demo) -> None:
    """Immediate alerts and a 07:00 daily digest for every region, subscribed since the replay began
    (a subscriber gets alerts raised after they subscribed)."""
    from datetime import datetime, timezone

    from alerts.subscriptions import subscribe

    since = datetime.fromisoformat(demo.options.start).replace(tzinfo=timezone.utc)
    subscribe(DEMO_RECIPIENT, "*", "yellow", "immediate", settings=demo.settings, now=since)
    subscribe(DEMO_RECIPIENT, "*", "yellow", "digest", "07:00", demo.settings.alerts.timezone,
              settings=demo.settings, now=since)
    typer.echo(f"subscribed {DEMO_RECIPIENT}: immediate alerts + daily digest at 07:00 {demo.settings.alerts.timezone}")


def publish_analyst_store(demo: Demo) -> None:
    _step("Analyst store (suppressed marts for `affectwatch sql`)")
    _run("analyst", "refresh")
    typer.echo(f"analyst store: {demo.settings.analyst_store_dir}  (try: affectwatch sql)")


def start_dashboard(demo: Demo) -> str:
    _step("Dashboard")
    s = demo.settings
    password = demo.state().get("dashboard_password")
    if not password or not demo.users_file.exists():
        from dashboard.auth import add_user

        password = secrets.token_urlsafe(9)
        add_user(demo.users_file, DEMO_USER, "admin", password)
        demo.save_state(dashboard_password=password)
    _spawn(demo, "dashboard", "dashboard", "--port", str(s.dashboard.port), "--users-file", str(demo.users_file))
    url = f"http://127.0.0.1:{s.dashboard.port}"
    if not _wait_http(f"{url}/_stcore/health"):
        raise RuntimeError(f"the dashboard did not start; see {demo.dir/'dashboard.log'}")
    typer.secho(f"\nDashboard: {url}   login: {DEMO_USER} / {password}", fg=typer.colors.GREEN, bold=True)
    typer.echo(SIMULATED_NOTE)
    return url


def run_demo(options: DemoOptions, serve: bool = True, settings: Settings | None = None) -> dict:
    global _children
    demo = Demo(settings or get_settings(), options)
    _children = demo.children
    summary: dict = {}
    try:
        with shutdown_signals():  # SIGTERM, SIGINT, SIGHUP -> Shutdown (a KeyboardInterrupt) here
            survey = options.affect == "survey"
            if not survey:
                start_broker(demo)
            prepare_warehouse(demo)
            load_real_symptoms(demo)
            if survey:
                load_survey_affect(demo)
            else:
                simulate_and_ingest(demo)
                forecasts_and_backtests(demo)
            alerts_and_email(demo)
            publish_analyst_store(demo)
            summary["dashboard"] = start_dashboard(demo)
            summary["emails"] = len(list(demo.mail_dir.glob("*.eml")))
            summary["mail_dir"] = str(demo.mail_dir)
            if serve:
                typer.echo("Press Ctrl-C (or send SIGTERM) to stop every process the demo started.")
                while demo.children.alive():
                    time.sleep(1)
                typer.echo("a demo process exited; stopping the rest")
    except KeyboardInterrupt as exc:
        say(f"\n{exc or 'interrupted'}: stopping every process the demo started")
    finally:
        with shutdown_signals(lambda signum: None):  # a second signal must not cut the clean-up short
            _stop_all(demo)
    return summary


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add `affectwatch demo` and `affectwatch sql-fixture`."""

    @app.command("sql-fixture")
    def sql_fixture(
        seed: int = typer.Option(0, help="Seed of the simulated parts."),
        force: bool = typer.Option(False, help="Add the fixture even if the warehouse already holds affect windows."),
    ) -> None:
        """Fill the configured warehouse with the fixture data (real FluSight/ILINet symptoms, SIMULATED affect)
        and publish the analyst store."""
        from affectwatch.warehouse import migrate, session
        from analyst.store import refresh
        from demo.fixture_data import build_fixture_warehouse

        s = get_settings()
        with session(s) as con:
            migrate(con)
            n = con.execute("select count(*) from affect_windows").fetchone()[0]
        if n and not force:
            typer.echo(f"error: the warehouse in {s.data_dir} already holds {n} affect windows; use an empty "
                       "AFFECTWATCH_DATA_DIR or --force", err=True)
            raise typer.Exit(1)
        counts = build_fixture_warehouse(s, seed=seed)
        typer.echo(f"fixture warehouse in {s.data_dir}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        typer.echo(f"analyst store: {json.dumps(refresh(s))}")

    @app.command("demo")
    def demo_command(
        start: str = typer.Option(DemoOptions.start, help="First day simulated (real data start 2022-02-05)."),
        end: str = typer.Option(DemoOptions.end, help="Last day simulated (real data end 2023-09-30)."),
        regions: str = typer.Option("", help="Comma-separated state FIPS codes; default every state."),
        devices_per_region: int = typer.Option(DemoOptions.devices_per_region, help="SIMULATED devices per state."),
        window_minutes: int = typer.Option(DemoOptions.window_minutes, help="Length of each affect window."),
        backtest_from: str = typer.Option(DemoOptions.backtest_from, help="First backtest reference date."),
        backtest_to: str = typer.Option(DemoOptions.backtest_to, help="Last backtest reference date."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Keep the dashboard running until Ctrl-C."),
        affect: str = typer.Option("simulator", help="simulator (SIMULATED device affect) | survey (REAL survey affect)."),
    ) -> None:
        """Run the whole system on real data: broker, simulator (SIMULATED affect), ingest, forecasts,
        backtests, alerts, email to a local SMTP sink, and the dashboard. Ctrl-C stops everything."""
        opts = DemoOptions(start=start, end=end, regions=regions, devices_per_region=devices_per_region,
                           window_minutes=window_minutes, backtest_from=backtest_from, backtest_to=backtest_to,
                           affect=affect)
        if affect not in ("simulator", "survey"):
            typer.echo(f"error: --affect must be simulator or survey, not {affect!r}", err=True)
            raise typer.Exit(2)
        summary = run_demo(opts, serve=serve)
        typer.echo(json.dumps(summary))
