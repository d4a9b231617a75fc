"""`affectwatch bench ingest`: producer, consumer and end-to-end ingest figures on a real broker.

Phases (each on fresh topics; the warehouse phases on a fresh warehouse):
1. produce_rate  - N valid windows, lz4, large batches, as fast as kafka-python can send.
2. consume_rate  - the worker's consume + decode + validate path, batches discarded (no warehouse).
3. ingest_rate   - the real worker, end to end into a fresh DuckLake warehouse.
4. e2e_p50_s/p99_s - a steady load (default 2,000 msg/s for 20 s) through the worker running as
   a separate `affectwatch ingest` process; a separate reader process polls the warehouse and
   records when each row becomes queryable (latency = visible time - Kafka produce timestamp).
``catalog="postgres"`` runs every phase on a DuckLake catalog in a throwaway PostgreSQL cluster
(``affectwatch.local_postgres``, durable settings: fsync on), one fresh database per phase.
The last printed line is one JSON object.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import msgspec

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings

log = get_logger(__name__)
UTC = timezone.utc
STATES = ("06", "36", "48", "12", "17", "42", "39", "13", "37", "26", "53", "04", "25", "47", "18", "29")
TARGETS = {"ingest_rate_min": 50_000, "ingest_vs_consume_min": 0.8, "e2e_p99_s_max": 1.0}
CATALOGS = ("sqlite", "postgres")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def window_dicts(n: int, *, devices: int = 2000, start: datetime | None = None, minutes: int = 15,
                 device_prefix: str = "bench", seed: int = 7) -> Iterator[dict]:
    """``n`` valid AffectWindow v1 dicts: ``devices`` devices, consecutive windows, all in the past."""
    import random

    rnd = random.Random(seed)
    per_device = -(-n // devices)
    start = start or (datetime.now(UTC) - timedelta(minutes=minutes * (per_device + 8))).replace(second=0, microsecond=0)
    step = timedelta(minutes=minutes)
    for i in range(n):
        dev, k = i % devices, i // devices
        ws = start + k * step
        v = rnd.uniform(-0.5, 0.5)
        yield {
            "schema_version": 1, "device_id": f"{device_prefix}-{dev:08d}", "region_id": STATES[dev % len(STATES)],
            "site_type": "ed", "window_start": _iso(ws), "window_end": _iso(ws + step),
            "n_observations": 11 + rnd.randrange(200), "n_abstained": rnd.randrange(10),
            "valence_mean": round(v, 4), "arousal_mean": round(rnd.uniform(-0.5, 0.5), 4),
            "valence_sd": 0.2, "arousal_sd": 0.25, "distress_share": round(rnd.random() * 0.3, 4),
            "confidence_mean": 0.8, "modality": "face", "model_version": "affnet-1.2",
            "quality": {"pose_stability": 0.9, "lighting": 0.7}, "dp_epsilon": None,
        }


def encode(records) -> tuple[list[bytes], list[bytes]]:
    enc = msgspec.json.Encoder()
    keys, values = [], []
    for r in records:
        keys.append(r["region_id"].encode())
        values.append(enc.encode(r))
    return keys, values


def fast_producer(bootstrap: str, settings: Settings, **overrides):
    from kafka import KafkaProducer

    kw = settings.kafka.client_kwargs()
    kw["bootstrap_servers"] = bootstrap
    cfg = dict(compression_type="lz4", batch_size=1024 * 1024, linger_ms=50, enable_idempotence=False,
               acks=1, max_request_size=16 * 1024 * 1024, max_in_flight_requests_per_connection=5)
    cfg.update(overrides)
    return KafkaProducer(**kw, **cfg)


def produce_all(producer, topic: str, keys: list[bytes], values: list[bytes], headers=None) -> float:
    t0 = time.perf_counter()
    send = producer.send
    for k, v in zip(keys, values):
        send(topic, value=v, key=k, headers=headers)
    producer.flush(timeout=300)
    return time.perf_counter() - t0


# -- consume / ingest phases ------------------------------------------------------------------
def _timed_worker(settings: Settings, topics: tuple[str, str], n: int, bootstrap: str, write: bool,
                  db_threads: int | None = None):
    """An IngestWorker that stops once ``n`` messages are consumed (write=False: batches discarded)."""
    from ingest.consume import IngestWorker
    from ingest.sink import PendingBatch

    class Timed(IngestWorker):
        first: float | None = None
        last: float | None = None
        consumed = 0

        def _add(self, topic, partition, msgs):
            if self.first is None:
                self.first = time.perf_counter()
            super()._add(topic, partition, msgs)

        def _flush(self):
            if write:
                return super()._flush()
            self.consumed += self._batch.n_messages
            self._batch = PendingBatch()
            if self.consumed >= n:
                self.last = time.perf_counter()
                self.stop()

        def _handle_results(self):
            super()._handle_results()
            if write and self.stats.messages >= n and self.last is None:
                self.last = time.perf_counter()
                self.stop()

    return Timed(settings, bootstrap=bootstrap, topics=topics, group_id=f"bench-{uuid.uuid4().hex[:8]}",
                 create_topics=False, install_signal_handlers=False, db_threads=db_threads)


def _rate(w, n: int) -> float:
    if w.first is None or w.last is None:
        raise RuntimeError("bench worker did not consume every message")
    return n / (w.last - w.first)


# -- e2e latency phase ------------------------------------------------------------------------
def _reader(data_dir: str, catalog: str | None, since_ms: int, stop_at: float, out: "mp.Queue") -> None:
    """Separate process: poll the warehouse and note when each produced row becomes queryable."""
    from affectwatch.warehouse import session

    s = _phase_settings(Path(data_dir), catalog)
    lat: list[tuple[float, float]] = []  # (produced ms, visible ms)
    last = datetime(1970, 1, 1, tzinfo=UTC)
    errors = 0
    slow: list[float] = []
    with session(s, read_only=True) as con:
        while time.time() < stop_at:
            q0 = time.perf_counter()
            try:  # rows of one batch share ingested_at; batches commit in order
                rows = con.execute("select ingested_at, list(epoch_ms(produced_at)) from affect_windows "
                                   "where ingested_at > ? group by all order by 1", [last]).fetchall()
            except Exception as exc:  # a lock error would show up here
                errors += 1
                log.warning("reader query failed", error=str(exc)[:200])
                rows = []
            if time.perf_counter() - q0 > 0.25:
                slow.append(round(time.perf_counter() - q0, 3))
            now_ms = time.time() * 1000
            for ingested_at, produced in rows:
                last = max(last, ingested_at)
                lat.extend((p, now_ms) for p in produced if p >= since_ms)
            time.sleep(0.05)
    out.put({"latencies": lat, "errors": errors, "slow_queries": slow})


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))]


def _phase_settings(data_dir: Path, catalog: str | None) -> Settings:
    """Settings of one phase: its own data dir and catalog (a PostgreSQL database, else a SQLite file there)."""
    return Settings(data_dir=data_dir,
                    warehouse={"catalog": catalog or f"sqlite:{data_dir / 'warehouse' / 'catalog.sqlite'}"})


class _Catalogs:
    """A fresh catalog per phase: None (SQLite file in the phase's data dir) or a new PostgreSQL database."""

    def __init__(self, kind: str, echo: Callable[[str], None]) -> None:
        if kind not in CATALOGS:
            raise ValueError(f"catalog must be one of {', '.join(CATALOGS)}, not {kind!r}")
        self.pg = None
        if kind == "postgres":
            from affectwatch.local_postgres import LocalPostgres

            self.pg = LocalPostgres(durable=True).start()
            echo(f"started a throwaway PostgreSQL cluster at 127.0.0.1:{self.pg.port} ({self.pg.dir})")

    def new(self, name: str) -> str | None:
        return self.pg.catalog(self.pg.create_database(f"bench_{name}_{uuid.uuid4().hex[:6]}")) if self.pg else None

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop()


def _await_assignment(worker: subprocess.Popen, log_path: Path, timeout: float = 300.0) -> None:
    """Start the clock only once the worker owns its partitions (start-up is not steady-state latency)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the e2e worker exited {worker.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
        if '"partitions positioned"' in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the e2e worker owned no partitions after {timeout:.0f} s")


def e2e_phase(bootstrap: str, base: Settings, workdir: Path, seconds: float, rate: float, partitions: int,
              echo: Callable[[str], None], catalog: str | None = None) -> dict:
    from ingest.broker import create_topics

    topics = (f"bench-e2e-aw-{uuid.uuid4().hex[:6]}", f"bench-e2e-sr-{uuid.uuid4().hex[:6]}")
    create_topics(bootstrap, list(topics), partitions)
    data_dir = workdir / "e2e"
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(data_dir), "AFFECTWATCH_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
           "AFFECTWATCH_KAFKA__AFFECT_TOPIC": topics[0], "AFFECTWATCH_KAFKA__SYMPTOM_TOPIC": topics[1],
           "AFFECTWATCH_KAFKA__GROUP_ID": f"bench-e2e-{uuid.uuid4().hex[:6]}", "AFFECTWATCH_LOG_FORMAT": "json",
           "AFFECTWATCH_WAREHOUSE__CATALOG": _phase_settings(data_dir, catalog).catalog}
    from affectwatch.warehouse import migrate

    migrate(settings=_phase_settings(data_dir, catalog))
    worker_log = workdir / "e2e-worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "affectwatch.cli", "ingest"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(worker_log, "wb"))
    _await_assignment(worker, worker_log)
    warm = 4.0
    total = int(rate * (seconds + warm))
    keys, values = encode(window_dicts(total, devices=4000, device_prefix="e2e"))
    producer = fast_producer(bootstrap, base, linger_ms=5, batch_size=256 * 1024)
    try:
        t_start = time.time()
        since_ms = int(t_start * 1000)
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        reader = ctx.Process(target=_reader, args=(str(data_dir), catalog, since_ms, t_start + warm + seconds + 4.0, q))
        reader.start()
        tick = 0.01
        sent, t0 = 0, time.perf_counter()
        while sent < total:
            target = (time.perf_counter() - t0) * rate
            while sent < min(total, int(target)):
                producer.send(topics[0], value=values[sent], key=keys[sent])
                sent += 1
            time.sleep(tick)
        producer.flush(timeout=30)
        res = q.get(timeout=120)
        reader.join(timeout=30)
    finally:
        producer.close(timeout=5)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
    pairs = res["latencies"]
    if not pairs:
        raise RuntimeError(f"no rows became visible during the latency phase (see {workdir / 'e2e-worker.log'})")
    # steady state only: from 2 s after the worker's first commit became visible (start-up backlog excluded)
    steady_from = min(v for _, v in pairs) + 2000
    lat = [(v - p) / 1000 for p, v in pairs if p >= steady_from]
    if len(lat) < rate * seconds * 0.5:
        raise RuntimeError(f"only {len(lat)} steady-state samples; the worker started too slowly "
                           f"(see {workdir / 'e2e-worker.log'})")
    if os.environ.get("AFFECTWATCH_BENCH_DUMP"):
        Path(os.environ["AFFECTWATCH_BENCH_DUMP"]).write_text(json.dumps(pairs))
    out = {"e2e_p50_s": round(_quantile(lat, 0.5), 3), "e2e_p99_s": round(_quantile(lat, 0.99), 3),
           "e2e_samples": len(lat), "e2e_reader_errors": res["errors"], "e2e_reader_slow_queries": len(res["slow_queries"]),
           "e2e_rate": rate}
    if res["slow_queries"]:
        log.info("slow reader queries", seconds=res["slow_queries"][:20])
    echo(f"e2e latency at {rate:.0f} msg/s: p50 {out['e2e_p50_s']} s, p99 {out['e2e_p99_s']} s "
         f"({len(lat)} rows, reader errors {res['errors']})")
    return out


# -- orchestration ----------------------------------------------------------------------------
def run_bench(messages: int = 300_000, bootstrap: str | None = None, e2e_seconds: float = 20.0,
              e2e_rate: float = 2000.0, partitions: int | None = None,
              echo: Callable[[str], None] = print, settings: Settings | None = None, catalog: str = "sqlite") -> dict:
    from ingest.broker import LocalBroker, create_topics

    base = settings or get_settings()
    partitions = partitions or base.kafka.partitions
    workdir = Path(tempfile.mkdtemp(prefix="aw-bench-ingest-"))
    broker = None
    catalogs = _Catalogs(catalog, echo)
    if not bootstrap:
        broker = LocalBroker(workdir / "kafka", partitions=partitions).start()
        bootstrap = broker.bootstrap
        echo(f"started a local broker at {bootstrap} ({workdir / 'kafka'})")
    try:
        topics = (f"bench-aw-{uuid.uuid4().hex[:6]}", f"bench-sr-{uuid.uuid4().hex[:6]}")
        create_topics(bootstrap, list(topics), partitions)
        keys, values = encode(window_dicts(messages))
        mb = sum(map(len, values)) / 1e6
        producer = fast_producer(bootstrap, base)
        secs = produce_all(producer, topics[0], keys, values, headers=[("aw-simulated", b"1")])
        producer.close()
        del keys, values
        produce_rate = messages / secs
        echo(f"produce: {messages} windows ({mb:.1f} MB JSON) in {secs:.2f} s = {produce_rate:,.0f} msg/s")

        w = _timed_worker(_phase_settings(workdir / "consume", catalogs.new("consume")), topics, messages, bootstrap,
                          write=False)
        w.run()
        consume_rate = _rate(w, messages)
        echo(f"consume + decode + validate: {consume_rate:,.0f} msg/s")

        w = _timed_worker(_phase_settings(workdir / "ingest", catalogs.new("ingest")), topics, messages, bootstrap,
                          write=True)
        w.run()
        ingest_rate = _rate(w, messages)
        if w.stats.affect_rows != messages:
            raise RuntimeError(f"ingest wrote {w.stats.affect_rows} rows, expected {messages}")
        echo(f"ingest (consume + validate + warehouse): {ingest_rate:,.0f} msg/s "
             f"= {ingest_rate / consume_rate:.2f} x consume ({w.stats.batches} transactions)")

        e2e = e2e_phase(bootstrap, base, workdir, e2e_seconds, e2e_rate, partitions, echo, catalogs.new("e2e"))
    finally:
        if broker is not None:
            broker.stop()
        catalogs.close()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "catalog": catalog, "messages": messages, "partitions": partitions,
        "produce_rate": round(produce_rate, 1), "consume_rate": round(consume_rate, 1),
        "ingest_rate": round(ingest_rate, 1), "ingest_vs_consume": round(ingest_rate / consume_rate, 3), **e2e,
    }
    result["targets_met"] = {
        "ingest_rate": result["ingest_rate"] >= TARGETS["ingest_rate_min"],
        "ingest_vs_consume": result["ingest_vs_consume"] >= TARGETS["ingest_vs_consume_min"],
        "e2e_p99_s": result["e2e_p99_s"] <= TARGETS["e2e_p99_s_max"],
    }
    for name, ok in result["targets_met"].items():
        if not ok:
            echo(f"TARGET MISSED: {name} (targets {json.dumps(TARGETS)})")
    return result
