"""CLI commands for this area (registered by affectwatch.cli): `broker ...`, `ingest`, `bench ingest`."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import typer

broker_app = typer.Typer(help="A local Apache Kafka broker (KRaft, single node) run with the JDK.",
                         no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@broker_app.command("fetch")
def broker_fetch(force: bool = typer.Option(False, help="Resolve the jars again even if present.")) -> None:
    """Resolve the Kafka broker jars from Maven Central into tools/kafka/lib (once)."""
    from ingest.broker import BrokerError, fetch_jars

    try:
        lib = fetch_jars(force=force)
    except BrokerError as exc:
        _fail(str(exc))
    typer.echo(f"kafka jars in {lib} ({len(list(Path(lib).glob('*.jar')))} jars)")


@broker_app.command("start")
def broker_start(
    port: int = typer.Option(None, help="Loopback port (default: from settings.kafka.bootstrap_servers)."),
    directory: Path = typer.Option(None, "--dir", help="State dir (default: <data_dir>/kafka)."),
    heap: str = typer.Option("512m", help="JVM max heap."),
) -> None:
    """Start the broker in the background, create the two topics, print the bootstrap address."""
    from affectwatch.settings import get_settings
    from ingest.broker import BrokerError, LocalBroker, default_broker

    s = get_settings()
    b = default_broker(s)
    if port or directory or heap != "512m":
        b = LocalBroker(directory or b.dir, port=port or b.port, host=b.host, heap=heap, partitions=s.kafka.partitions)
    try:
        already = b.running
        b.start(topics=[s.kafka.affect_topic, s.kafka.symptom_topic])
    except BrokerError as exc:
        _fail(str(exc))
    typer.echo(f"kafka broker {'already running' if already else 'started'} (pid {b.pid}, state {b.dir})")
    typer.echo(b.bootstrap)


@broker_app.command("stop")
def broker_stop(
    directory: Path = typer.Option(None, "--dir", help="State dir (default: <data_dir>/kafka)."),
    timeout: float = typer.Option(30.0, help="Seconds to wait after SIGTERM before SIGKILL."),
) -> None:
    """Stop the broker (SIGTERM, then SIGKILL after the timeout)."""
    from ingest.broker import LocalBroker, default_broker

    b = LocalBroker(directory) if directory else default_broker()
    typer.echo("kafka broker stopped" if b.stop(timeout=timeout) else "kafka broker was not running")


@broker_app.command("status")
def broker_status(directory: Path = typer.Option(None, "--dir", help="State dir (default: <data_dir>/kafka).")) -> None:
    """Say whether the broker is running, and its address."""
    from ingest.broker import LocalBroker, default_broker

    b = LocalBroker(directory) if directory else default_broker()
    st = b.status()
    typer.echo(f"{'running' if st['running'] else 'stopped'} {st['bootstrap']}"
               + (f" pid {st['pid']}" if st["pid"] else ""))
    if not st["running"]:
        raise typer.Exit(3)


ingest_app = typer.Typer(help="Consume both topics into the warehouse, exactly once (`ingest status`: lag, "
                         "rows/s, dead letters, stuck partitions).", invoke_without_command=True)


@ingest_app.callback()
def ingest(
    ctx: typer.Context,
    until_idle: float = typer.Option(None, help="Exit once the topics are drained and idle for this many seconds."),
    max_batch: int = typer.Option(None, help="Max records per warehouse transaction (default settings.kafka.batch_max_records)."),
    max_seconds: float = typer.Option(None, help="Max age of a batch before it is committed (default settings.kafka.batch_max_seconds)."),
    bootstrap: str = typer.Option(None, help="Override settings.kafka.bootstrap_servers."),
    group: str = typer.Option(None, help="Override settings.kafka.group_id."),
    instance_id: str = typer.Option(None, help="Static group membership id (fast restarts after a crash)."),
    metrics_port: int = typer.Option(None, help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics (0 = any free port)."),
) -> None:
    """Consume both topics into the warehouse, exactly once; bad records go to dead_letters."""
    if ctx.invoked_subcommand is not None:
        return
    from ingest.consume import IngestWorker

    worker = IngestWorker(until_idle=until_idle, max_batch=max_batch, max_seconds=max_seconds, bootstrap=bootstrap,
                          group_id=group, instance_id=instance_id, metrics_port=metrics_port)
    finished = threading.Event()
    bar = _catch_up_bar(worker, finished) if until_idle is not None else None
    try:
        stats = worker.run()
    finally:
        finished.set()
        if bar is not None:
            bar.join(timeout=5)
    typer.echo(json.dumps(stats.as_dict()))


def _catch_up_bar(worker, finished: threading.Event) -> threading.Thread | None:
    """A progress bar (terminal only) of the messages this catch-up run has stored, out of the backlog."""
    from affectwatch.progress import enabled, progress
    from ingest import backlog

    if not enabled():
        return None
    topics = [worker.affect_topic, worker.symptom_topic]
    try:
        total = backlog.lag(worker.s, worker.group, topics, worker.bootstrap)
    except Exception:  # noqa: BLE001 - no bar rather than no ingest (the worker reports the broker error)
        return None

    def follow() -> None:
        with progress(total=total, desc="ingest catch-up", unit="msg") as bar:
            while not finished.wait(0.5):
                bar.update(worker.stats.messages - bar.n)
            bar.update(worker.stats.messages - bar.n)

    thread = threading.Thread(target=follow, name="catch-up-progress", daemon=True)
    thread.start()
    return thread


@ingest_app.command("status")
def ingest_status(
    group: str = typer.Option(None, help="Consumer group (default settings.kafka.group_id)."),
    bootstrap: str = typer.Option(None, help="Override settings.kafka.bootstrap_servers."),
) -> None:
    """Lag per partition, rows/s, dead letters by reason, last commit, stuck partitions (last line JSON)."""
    from affectwatch.settings import get_settings
    from ingest.status import collect_status, render_status

    st = collect_status(get_settings(), group=group, bootstrap=bootstrap)
    typer.echo(render_status(st))
    typer.echo(json.dumps(st, default=str))


def bench_ingest(
    messages: int = typer.Option(300_000, help="Windows to produce for the throughput phases."),
    bootstrap: str = typer.Option(None, help="Use this broker instead of starting a local one."),
    e2e_seconds: float = typer.Option(20.0, help="Length of the steady-load latency phase."),
    e2e_rate: float = typer.Option(2000.0, help="Messages/s during the latency phase."),
    partitions: int = typer.Option(None, help="Partitions of the bench topics (default settings.kafka.partitions)."),
    catalog: str = typer.Option("sqlite", help="DuckLake catalog: sqlite (a file) or postgres (a throwaway "
                                "PostgreSQL cluster started by the bench)."),
) -> None:
    """Produce/consume/ingest throughput and end-to-end latency; last line is one JSON object."""
    from ingest.bench import CATALOGS, run_bench

    if catalog not in CATALOGS:
        _fail(f"--catalog must be one of {', '.join(CATALOGS)}")
    result = run_bench(messages=messages, bootstrap=bootstrap, e2e_seconds=e2e_seconds, e2e_rate=e2e_rate,
                       partitions=partitions, echo=typer.echo, catalog=catalog)
    typer.echo(json.dumps(result))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""
    app.add_typer(broker_app, name="broker")
    app.add_typer(ingest_app, name="ingest")
    bench_app.command("ingest")(bench_ingest)
