"""CLI commands for this area (registered by affectwatch.cli).

`affectwatch alerts run-once|list|ack|subscribe|unsubscribe|subscriptions|send-pending|rules`,
`affectwatch schedule`, `affectwatch smtp-sink`.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import typer

alerts_app = typer.Typer(help="Alert rules, lifecycle, subscriptions and email delivery.", no_args_is_help=True)


def _parse_now(now: str | None) -> datetime | None:
    if not now:
        return None
    try:
        ts = datetime.fromisoformat(now)
    except ValueError:
        raise typer.BadParameter(f"--now must be an ISO 8601 time such as 2026-01-12T08:00:00+00:00, got {now!r}")
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, default=str, indent=2))


@alerts_app.command("run-once")
def run_once_cmd(
    now: str = typer.Option(None, help="Evaluate as of this time (ISO 8601; default: now)."),
    send: bool = typer.Option(True, "--send/--no-send", help="Also queue and send emails."),
) -> None:
    """One pass for cron users: detection + alert lifecycle, then queue and send emails."""
    from affectwatch.warehouse import migrate
    from alerts.engine import run_once
    from alerts.outbox import deliver

    ts = _parse_now(now)
    migrate()
    out = {"detection": run_once(now=ts)}
    if send:
        out["delivery"] = deliver(now=ts)
    _echo_json(out)


@alerts_app.command("list")
def list_cmd(
    all_: bool = typer.Option(False, "--all", help="Include resolved alerts and insufficient-data records."),
    signal: str = typer.Option(None, help="Only this signal."),
    region: str = typer.Option(None, help="Only this region id."),
    limit: int = typer.Option(50, min=1),
) -> None:
    """Alerts with their evidence and acknowledgements (active red/yellow by default)."""
    from affectwatch.warehouse import session

    where, params = [], []
    if not all_:
        where.append("a.status in ('open', 'ongoing') and a.level in ('red', 'yellow')")
    if signal:
        where.append("a.signal = ?")
        params.append(signal)
    if region:
        where.append("a.region_id = ?")
        params.append(region)
    sql = f"""select a.alert_id, a.level, a.status, a.detectors, round(a.statistic, 3) as statistic,
                     round(a.threshold, 3) as threshold, a.p_value, a.data_start, a.data_end, a.provisional,
                     a.reason, (select string_agg(acknowledged_by, ', ') from alert_acks k where k.alert_id = a.alert_id) as acked_by
              from alerts a {'where ' + ' and '.join(where) if where else ''}
              order by case a.level when 'red' then 0 when 'yellow' then 1 else 2 end, a.last_updated desc limit ?"""
    with session() as con:
        cur = con.execute(sql, [*params, limit])
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    if not rows:
        typer.echo("no alerts")
        return
    typer.echo("\t".join(cols))
    for r in rows:
        typer.echo("\t".join("" if v is None else str(v) for v in r))


@alerts_app.command("ack")
def ack_cmd(
    alert_id: str = typer.Argument(..., help="Alert id as shown by `alerts list` (region|signal|period)."),
    by: str = typer.Option(..., "--by", help="Who acknowledges."),
    note: str = typer.Option(None, help="Free-text note."),
    label: str = typer.Option(None, help="Outcome label: true_alarm or false_alarm."),
) -> None:
    """Acknowledge an alert (who, when, note, optional true/false-alarm label)."""
    from alerts.lifecycle import acknowledge

    try:
        out = acknowledge(alert_id, by, note, label)
    except (KeyError, ValueError) as exc:
        typer.echo(f"error: {exc.args[0] if exc.args else exc}", err=True)
        raise typer.Exit(2)
    _echo_json(out)


@alerts_app.command("subscribe")
def subscribe_cmd(
    recipient: str = typer.Argument(..., help="Email address."),
    regions: str = typer.Option("*", help="Comma-separated region ids (state '06' covers its counties) or '*'."),
    min_level: str = typer.Option("yellow", help="yellow or red."),
    mode: str = typer.Option("immediate", help="immediate or digest."),
    at: str = typer.Option(None, "--at", help="Local HH:MM for the daily digest (default 07:00)."),
    tz: str = typer.Option(None, "--tz", help="IANA time zone of --at (default settings.alerts.timezone)."),
) -> None:
    """Subscribe an address to alerts, at once or as a daily digest at a local time."""
    from affectwatch.warehouse import migrate
    from alerts.subscriptions import subscribe

    migrate()
    try:
        sub = subscribe(recipient, regions, min_level, mode, at, tz)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    _echo_json(sub.__dict__)


@alerts_app.command("unsubscribe")
def unsubscribe_cmd(
    recipient: str = typer.Argument(...),
    subscription_id: str = typer.Option(None, "--id", help="Only this subscription."),
) -> None:
    """Deactivate a recipient's subscriptions."""
    from alerts.subscriptions import unsubscribe

    typer.echo(f"deactivated {unsubscribe(recipient, subscription_id)} subscription(s)")


@alerts_app.command("subscriptions")
def subscriptions_cmd() -> None:
    """List active subscriptions."""
    from affectwatch.warehouse import session
    from alerts.subscriptions import active_subscriptions

    with session() as con:
        subs = active_subscriptions(con)
    if not subs:
        typer.echo("no active subscriptions")
    for s in subs:
        when = f"digest at {s.digest_time} {s.timezone}" if s.mode == "digest" else "immediate"
        typer.echo(f"{s.subscription_id}\t{s.recipient}\t{','.join(s.regions)}\t>= {s.min_level}\t{when}")


@alerts_app.command("send-pending")
def send_pending_cmd(
    retry_failed: bool = typer.Option(False, help="First requeue messages that exhausted their attempts."),
    queue: bool = typer.Option(True, "--queue/--no-queue", help="Also queue due immediate alerts and digests."),
) -> None:
    """Send queued emails whose backoff has expired (and queue due ones first)."""
    from affectwatch.warehouse import session
    from alerts import outbox

    with session() as con:
        if retry_failed:
            typer.echo(f"requeued {outbox.retry_failed(con)} failed message(s)")
        out = outbox.deliver(con=con) if queue else outbox.send_pending(con=con)
    _echo_json(out)


@alerts_app.command("rules")
def rules_cmd(file: Path = typer.Option(None, help="Rule file (default settings.alerts.rules_file).")) -> None:
    """Validate the alert rule file and print a summary."""
    from alerts.rules import RuleError, load_rules

    try:
        rules = load_rules(file)
    except RuleError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)
    for name, r in rules.signals.items():
        levels = "; ".join(
            f"{lvl}: {lr.require} of [" + ", ".join(
                f"{c.detector} " + next(f"{k}={v}" for k, v in c.model_dump().items() if k != "detector" and v is not None)
                for c in lr.when) + "]"
            for lvl, lr in r.levels.items())
        typer.echo(f"{name} ({r.source}{':' + r.syndrome if r.syndrome else ''}, {r.frequency}): "
                   f"detectors {[d.method for d in r.detectors]}; {levels}")


def schedule_cmd(
    run_for: float = typer.Option(None, help="Stop after this many seconds (demos, tests); default: run until Ctrl-C."),
) -> None:
    """Run forecast refresh, detection and email delivery on their cron schedules (catches up after restarts)."""
    from alerts.scheduler import serve

    serve(run_for=run_for)


def smtp_sink_cmd(
    dir: Path = typer.Option(Path("var/mail"), "--dir", help="Folder for the .eml files."),
    port: int = typer.Option(8025, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
) -> None:
    """A local SMTP server that saves each message as an .eml file (one per Message-ID)."""
    import time

    from alerts.smtp_sink import SmtpSink

    from affectwatch.processes import shutdown_signals

    sink = SmtpSink(dir, host=host, port=port).start()
    typer.echo(f"smtp sink on {host}:{port}, saving to {dir} (Ctrl-C or SIGTERM to stop)")
    try:
        with shutdown_signals():
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:  # also processes.Shutdown (SIGTERM, SIGHUP)
        pass
    finally:
        sink.stop()


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""
    app.add_typer(alerts_app, name="alerts")
    app.command("schedule")(schedule_cmd)
    app.command("smtp-sink")(smtp_sink_cmd)

    @bench_app.command("email")
    def bench_email(
        messages: int = typer.Option(1000, help="Messages to queue and send."),
        alerts: int = typer.Option(20, help="Distinct alerts (recipients = messages / alerts)."),
        workers: int = typer.Option(4, help="Parallel SMTP connections."),
        batch_size: int = typer.Option(200, help="Messages claimed and journalled per warehouse transaction."),
        baseline: int = typer.Option(50, help="Messages for the same-run one-connection comparison (0: skip)."),
    ) -> None:
        """Send N alert emails through the outbox to a local aiosmtpd sink; prints messages/s."""
        from alerts.bench_email import run_bench

        run_bench(messages=messages, alerts=alerts, workers=workers, batch_size=batch_size, baseline=baseline,
                  echo=typer.echo)
