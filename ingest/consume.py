"""The ingest worker: Kafka (both topics, one consumer group) -> validate -> warehouse, exactly once.

Loop: poll -> decode/validate each record into the pending batch (valid rows or dead letters)
-> when the batch is full (``batch_max_records``) or old (``batch_max_seconds``) or the topics
are drained, hand it to the writer thread, which writes rows + dead letters + next offsets in
one warehouse transaction (``ingest.sink.write_batch``) while the main thread keeps consuming.
Offsets committed to Kafka afterwards are informational: on (re)assignment the worker seeks
to the offsets stored in the warehouse (``ingest_offsets``), else to the earliest offset.
SIGTERM/SIGINT/SIGHUP: finish and commit the current batch, leave the group, exit 0.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from kafka import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import IllegalStateError
from kafka.structs import TopicPartition

from affectwatch.logs import get_logger
from affectwatch.processes import SHUTDOWN_SIGNALS
from affectwatch.settings import Settings, get_settings
from ingest.contracts import AffectWindow, SymptomReport
from ingest.sink import BatchResult, PendingBatch, PreparedBatch, prepare_batch, stored_offsets, write_prepared
from ingest.validate import Validator

log = get_logger(__name__)
logging.getLogger("kafka").setLevel(logging.WARNING)

SIMULATED_HEADER = ("aw-simulated", b"1")
PROGRESS_EVERY_S = 5.0
# Safety net only (see _watch_group): a member with no partitions for this long re-joins with a fresh
# consumer. With more workers than partitions an idle member is legitimate and re-joins every EMPTY_ASSIGNMENT_S.
EMPTY_ASSIGNMENT_S = 30.0
BROKER_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # waiting for a broker that is not up (yet)


@dataclass
class WorkerStats:
    messages: int = 0
    affect_rows: int = 0
    symptom_rows: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def add(self, r: BatchResult) -> None:
        self.messages += r.n_messages
        self.affect_rows += r.n_affect
        self.symptom_rows += r.n_symptoms
        self.duplicates += r.n_duplicates
        self.dead_letters += r.n_dead_letters
        self.batches += 1
        for d in r.dead:
            self.dead_by_reason[d.reason] = self.dead_by_reason.get(d.reason, 0) + 1

    def as_dict(self) -> dict:
        secs = max(time.monotonic() - self.started, 1e-9)
        return {"messages": self.messages, "affect_rows": self.affect_rows, "symptom_rows": self.symptom_rows,
                "duplicates": self.duplicates, "dead_letters": self.dead_letters, "batches": self.batches,
                "seconds": round(secs, 3), "rows_per_s": round(self.messages / secs, 1)}


def consumer_config(settings: Settings, max_batch: int, *, group_id: str | None = None,
                    instance_id: str | None = None, bootstrap: str | None = None) -> dict:
    """kafka-python KafkaConsumer settings tuned for large batches (TLS/SASL from settings)."""
    kw = settings.kafka.client_kwargs()
    if bootstrap:
        kw["bootstrap_servers"] = [b.strip() for b in bootstrap.split(",") if b.strip()]
    kw.update(
        group_id=group_id or settings.kafka.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_batch,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_wait_ms=100,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
        max_poll_interval_ms=60_000,  # also the rebalance timeout; positioning after a rebalance may take a while
        # Incremental (KIP-429) rebalances: a member keeps its partitions through every rejoin and only the
        # partitions that move are revoked. kafka-python 3.0.12 rejoins right after many assignments (the
        # leader's metadata snapshot from before the join differs from the next metadata response); with the
        # default eager assignors each such rejoin revoked every partition of every member (see README).
        partition_assignment_strategy=(CooperativeStickyAssignor,),
        receive_buffer_bytes=4 * 1024 * 1024,
        metadata_max_age_ms=30_000,
    )
    if instance_id:
        kw["group_instance_id"] = instance_id
    return kw


class IngestWorker:
    """One ingest worker process; ``run()`` returns the totals when stopped or idle."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        until_idle: float | None = None,
        max_batch: int | None = None,
        max_seconds: float | None = None,
        bootstrap: str | None = None,
        group_id: str | None = None,
        instance_id: str | None = None,
        topics: tuple[str, str] | None = None,
        create_topics: bool = True,
        install_signal_handlers: bool = True,
        db_threads: int | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.s = settings or get_settings()
        self.until_idle = until_idle
        self.max_batch = max_batch or self.s.kafka.batch_max_records
        self.max_seconds = self.s.kafka.batch_max_seconds if max_seconds is None else max_seconds
        self.bootstrap = bootstrap
        self.group = group_id or self.s.kafka.group_id
        self.instance_id = instance_id
        self.affect_topic, self.symptom_topic = topics or (self.s.kafka.affect_topic, self.s.kafka.symptom_topic)
        self.create_topics = create_topics
        self.install_signal_handlers = install_signal_handlers
        self.db_threads = db_threads
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._batch = PendingBatch()
        self._queue: queue.Queue[PreparedBatch | None] = queue.Queue(maxsize=1)
        self._results: deque[BatchResult] = deque()
        self._writer_error: BaseException | None = None
        self._validator = Validator(self.s)
        self._last_record = time.monotonic()
        self._last_idle_check = 0.0
        self._last_progress = time.monotonic()
        self._progress_mark = (0, time.monotonic())
        self._lag: dict[str, int] = {}
        self._closing = False
        self.consumer = None
        self._owned: frozenset = frozenset()  # partitions we own (rebalance deltas applied, kafka IO thread)
        self._to_position: set = set()  # added partitions, paused until seeked to the warehouse offsets
        self._rebalance_lock = threading.Lock()
        self.con = None
        self._dlq = None
        self.metrics_port = metrics_port
        self.metrics_server = None
        self.state = "starting"  # starting | waiting_for_broker | consuming | stopped
        self.worker_id = instance_id or f"{socket.gethostname()}-{os.getpid()}"
        self._stuck: dict[tuple[str, int], dict] = {}  # partitions parked because they cannot be read
        self._rows_per_s = 0.0
        self._last_commit_unix: float | None = None
        self._last_poll_error = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self, *_args) -> None:
        """Ask the worker to finish the current batch and exit (signal-safe)."""
        self._stop.set()

    def run(self) -> WorkerStats:
        from affectwatch.warehouse import connect, migrate

        if self.install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in SHUTDOWN_SIGNALS:  # SIGTERM, SIGINT, SIGHUP
                signal.signal(sig, self.stop)
        self.con = connect(self.s, threads=self.db_threads)
        migrate(self.con)
        from ingest.status import workers_dir

        self._status_path = workers_dir(self.s) / f"{self.group}.{self.worker_id}.json"
        if self.metrics_port is not None:
            from ingest.metrics import serve_metrics

            self.metrics_server = serve_metrics(self.metrics_port, self.snapshot)
            log.info("metrics endpoint up", url=f"http://0.0.0.0:{self.metrics_server.server_port}/metrics")
        if self.create_topics:
            self._ensure_topics()
        cfg = consumer_config(self.s, self.max_batch, group_id=self.group, instance_id=self.instance_id,
                              bootstrap=self.bootstrap)
        self._consumer_cfg = cfg
        self._new_consumer()
        if self._stop.is_set():  # stopped while waiting for the broker
            self._shutdown_quietly()
            return self.stats
        self.state = "consuming"
        writer = threading.Thread(target=self._writer_loop, name="warehouse-writer", daemon=True)
        writer.start()
        log.info("ingest worker started", group=self.group, topics=[self.affect_topic, self.symptom_topic],
                 bootstrap=cfg["bootstrap_servers"], max_batch=self.max_batch, max_seconds=self.max_seconds)
        try:
            self._loop()
            self._flush()
            self._drain()
        finally:
            self._closing = True  # the writer is gone: rebalance callbacks during close must not flush
            self._queue.put(None)
            writer.join(timeout=60)
            self._handle_results()
            try:
                self.consumer.close(autocommit=False)
            except Exception as exc:  # pragma: no cover - best effort on shutdown
                log.warning("consumer close failed", error=str(exc))
            if self._dlq is not None:
                self._dlq.close(timeout=5)
            self._shutdown_quietly()
        log.info("ingest worker stopped", **self.stats.as_dict())
        if self._writer_error is not None:
            raise self._writer_error
        return self.stats

    def _shutdown_quietly(self) -> None:
        self.state = "stopped"
        self.con.close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        try:
            self._status_path.unlink(missing_ok=True)
        except OSError:
            pass

    def _new_consumer(self) -> None:
        """A consumer subscribed to both topics; waits (with backoff) while the broker cannot be reached."""
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        attempt = 0
        while True:
            try:
                self.consumer = KafkaConsumer(**self._consumer_cfg)
                break
            except KafkaError as exc:  # NoBrokersAvailable, KafkaTimeoutError("Unable to bootstrap"), ...
                wait = BROKER_BACKOFF_S[min(attempt, len(BROKER_BACKOFF_S) - 1)]
                attempt += 1
                self.state = "waiting_for_broker"
                log.warning("waiting for the Kafka broker", bootstrap=self._consumer_cfg["bootstrap_servers"],
                            attempt=attempt, retry_in_s=wait, error=f"{type(exc).__name__}: {exc}"[:200])
                self._write_status()
                if self._stop.wait(wait):
                    return
        if attempt:
            log.info("Kafka broker reachable", attempts=attempt)
        self._await_metadata()
        with self._rebalance_lock:
            self._owned = frozenset()
            self._to_position = set()
        self.consumer.subscribe([self.affect_topic, self.symptom_topic], listener=_Rebalance(self))
        self._unstable_since: float | None = None

    def _watch_group(self) -> None:
        """Safety net: replace the consumer if its group membership stays unsettled too long.

        With eager rebalances kafka-python 3.0.12 was seen to end a rejoin that followed an assignment
        with no partitions for minutes (assigned, revoked 5 ms later, then nothing). Cooperative
        rebalances and a listener that never blocks the client's IO thread remove the causes; this
        watch stays for anything else. It trusts the worker's own rebalance callbacks (no partitions
        owned) and ``assignment()``. A fresh consumer is safe because positions come from the warehouse.
        """
        state = getattr(getattr(self.consumer, "_coordinator", None), "state", None)
        if self._owned and self.consumer.assignment():
            self._unstable_since = None
            return
        now = time.monotonic()
        if self._unstable_since is None:
            self._unstable_since = now
            return
        if now - self._unstable_since > EMPTY_ASSIGNMENT_S:
            log.warning("group rebalance stuck; re-joining with a fresh consumer", state=str(state),
                        seconds=round(now - self._unstable_since, 1))
            self._flush()
            self._drain()
            self._closing = True
            try:
                self.consumer.close(autocommit=False)
            finally:
                self._closing = False
            self._new_consumer()

    def _await_metadata(self, timeout: float = 30.0) -> None:
        """Fetch partition metadata before joining the group: a group leader without it assigns nothing."""
        deadline = time.monotonic() + timeout
        missing = [self.affect_topic, self.symptom_topic]
        while missing and time.monotonic() < deadline:
            missing = [t for t in missing if not self.consumer.partitions_for_topic(t)]
            if missing:
                time.sleep(0.2)
        if missing:
            log.warning("no partition metadata yet; joining anyway", topics=missing)

    def _ensure_topics(self) -> None:
        from ingest.broker import create_topics

        kw = self.s.kafka.client_kwargs()
        bootstrap = kw.pop("bootstrap_servers")
        if self.bootstrap:
            bootstrap = [b.strip() for b in self.bootstrap.split(",") if b.strip()]
        try:
            created = create_topics(bootstrap, [self.affect_topic, self.symptom_topic], self.s.kafka.partitions,
                                    client_kwargs=kw)
            if created:
                log.info("topics created", topics=created, partitions=self.s.kafka.partitions)
        except Exception as exc:
            log.warning("could not check/create topics; relying on the cluster", error=str(exc)[:300])

    # -- main loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        from kafka.errors import KafkaError

        poll_ms = max(10, min(200, int(self.max_seconds * 1000 / 2)))
        while not self._stop.is_set():
            self._check_writer()
            self._handle_results()
            try:
                records = self.consumer.poll(timeout_ms=poll_ms, max_records=self.max_batch)
            except KafkaError as exc:
                if not self._park_unreadable(exc):
                    log.warning("kafka poll failed; retrying", error=_error_text(exc))
                    self._stop.wait(1.0)
                continue
            self._position_added()
            if records:
                self._validator.refresh()  # "now" for the future-window rule, once per poll
            for tp, msgs in records.items():
                self._add(tp.topic, tp.partition, msgs)
            b = self._batch
            if b.n_messages:
                age = time.monotonic() - b.started
                # full, or old, or nothing more to read right now (low latency at steady load)
                if (b.n_messages >= self.max_batch or not records or age >= self.max_seconds
                        or (age >= self.max_seconds / 2 and self._caught_up(b))):
                    self._flush()
            if records:
                self._last_record = time.monotonic()
            elif self.until_idle is not None and self._idle():
                log.info("topics drained; exiting", idle_s=self.until_idle)
                break
            self._watch_group()
            self._progress()

    def _park_unreadable(self, exc: Exception) -> bool:
        """Pause the partition whose record batch cannot be read (codec unknown to this client, corrupt
        batch), so the other partitions keep flowing; it stays visible as stuck (log, status, metrics)
        until the worker restarts with a client that can read it. False when no partition is to blame."""
        from kafka.errors import CorruptRecordError, UnsupportedCodecError

        if not isinstance(exc, (UnsupportedCodecError, CorruptRecordError)):
            return False
        fetcher = getattr(self.consumer, "_fetcher", None)
        meta = getattr(fetcher, "_next_in_line_exception_metadata", None)
        part = getattr(fetcher, "_next_partition_records", None)
        tp = meta.partition if meta is not None else getattr(part, "topic_partition", None)
        if tp is None:
            return False
        try:
            offset = self.consumer.position(tp, timeout_ms=5000)
        except Exception:
            offset = getattr(part, "next_fetch_offset", None)
        self.consumer.pause(tp)
        if fetcher is not None:  # drop the unreadable data this client still holds for it
            if meta is not None:
                fetcher._next_in_line_exception_metadata = None
            if part is not None and part.topic_partition == tp:
                part.drain()
                fetcher._next_partition_records = None
        entry = {"topic": tp.topic, "partition": tp.partition, "offset": offset,
                 "error": _error_text(exc), "since": time.time()}
        self._stuck[(tp.topic, tp.partition)] = entry
        log.error("partition stuck: its records cannot be read; other partitions keep flowing",
                  topic=tp.topic, partition=tp.partition, offset=offset, error=entry["error"])
        self._write_status()
        return True

    def _add(self, topic: str, partition: int, msgs: list) -> None:
        """Validate one partition's records into the pending batch (the hot path)."""
        b = self._batch
        if not b.n_messages:
            b.started = time.monotonic()
        if topic == self.affect_topic:
            check, kind = self._validator.affect, AffectWindow
            rows, tops, parts, offs = b.affect, b.a_topic, b.a_partition, b.a_offset
            ts, sim = b.a_ts, b.a_sim
        else:
            check, kind = self._validator.symptom, SymptomReport
            rows, tops, parts, offs = b.symptoms, b.s_topic, b.s_partition, b.s_offset
            ts = sim = None
        for m in msgs:
            obj = check(m.value)
            if type(obj) is kind:
                rows.append(obj)
                tops.append(topic)
                parts.append(partition)
                offs.append(m.offset)
                if ts is not None:
                    ts.append(m.timestamp)
                    sim.append(SIMULATED_HEADER in m.headers if m.headers else False)
            else:
                b.add_rejection(topic, partition, m.offset, m.key, m.value, obj, m.timestamp)
        b.n_messages += len(msgs)
        b.first_offsets.setdefault((topic, partition), msgs[0].offset)  # sink's fence against a newer owner
        b.next_offsets[(topic, partition)] = msgs[-1].offset + 1

    def _flush(self) -> None:
        """Hand the pending batch to the writer thread (blocks while the previous one is written)."""
        b = self._batch
        if not b.n_messages:
            return
        self._batch = PendingBatch()
        prepared = prepare_batch(b, self.group, self._max_lag(b))  # Python work stays on this thread
        while True:
            self._check_writer()
            try:
                self._queue.put(prepared, timeout=0.5)
                return
            except queue.Full:
                continue

    def _drain(self) -> None:
        """Wait until every handed-over batch is committed to the warehouse."""
        self._queue.join()
        self._check_writer()
        self._handle_results()

    def _writer_loop(self) -> None:
        while True:
            b = self._queue.get()
            try:
                if b is None:
                    return
                if self._writer_error is None:
                    self._results.append(write_prepared(self.con, b))
            except BaseException as exc:  # surfaced in the main thread; nothing after it is committed
                self._writer_error = exc
                self._stop.set()
            finally:
                self._queue.task_done()

    def _check_writer(self) -> None:
        if self._writer_error is not None:
            raise RuntimeError(f"warehouse write failed: {self._writer_error}") from self._writer_error

    def _handle_results(self) -> None:
        """After a warehouse commit: informational Kafka commit, optional DLQ copy, counters."""
        from kafka.structs import OffsetAndMetadata, TopicPartition

        while self._results:
            r = self._results.popleft()
            self.stats.add(r)
            self._last_commit_unix = time.time()
            if r.dead and self.s.kafka.dlq_topic:
                self._to_dlq(r)
            assigned = self.consumer.assignment() if self.consumer else set()
            offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in r.next_offsets.items()
                       if TopicPartition(t, p) in assigned}
            if offsets:
                try:
                    self.consumer.commit_async(offsets=offsets)
                except Exception as exc:  # informational only; the warehouse holds the truth
                    log.debug("kafka offset commit skipped", error=str(exc)[:200])
            log.debug("batch committed", messages=r.n_messages, affect=r.n_affect, symptoms=r.n_symptoms,
                      duplicates=r.n_duplicates, dead_letters=r.n_dead_letters, seconds=round(r.seconds, 3))

    def _to_dlq(self, r: BatchResult) -> None:
        from kafka import KafkaProducer

        if self._dlq is None:
            kw = self.s.kafka.client_kwargs()
            if self.bootstrap:
                kw["bootstrap_servers"] = [b.strip() for b in self.bootstrap.split(",") if b.strip()]
            self._dlq = KafkaProducer(acks="all", max_request_size=8 * 1024 * 1024, **kw)
        for d in r.dead:
            headers = [("aw-reason", d.reason.encode()), ("aw-source-topic", d.topic.encode()),
                       ("aw-source-partition", str(d.partition).encode()), ("aw-source-offset", str(d.offset).encode())]
            self._dlq.send(self.s.kafka.dlq_topic, value=d.raw, key=d.key, headers=headers)
        self._dlq.flush(timeout=10)

    # -- lag, idleness, progress -----------------------------------------------------------
    def _max_lag(self, b: PendingBatch) -> int | None:
        from kafka.structs import TopicPartition

        from ingest.status import partition_lag

        lags = []
        for (t, p), nxt in b.next_offsets.items():
            try:
                hw = self.consumer.highwater(TopicPartition(t, p))
            except Exception:
                hw = None
            if hw is not None:
                lag = partition_lag(hw, nxt)
                self._lag[f"{t}[{p}]"] = lag
                lags.append(lag)
        return max(lags) if lags else None

    def _caught_up(self, b: PendingBatch) -> bool:
        """True when the batch holds everything the broker had for its partitions at the last fetch."""
        for (t, p), nxt in b.next_offsets.items():
            hw = self.consumer.highwater(TopicPartition(t, p))
            if hw is None or hw > nxt:
                return False
        return True

    def _idle(self) -> bool:
        """True when nothing arrived for ``until_idle`` seconds and every assigned partition is drained."""
        now = time.monotonic()
        if (self._batch.n_messages or now - self._last_record < self.until_idle
                or now - self._last_idle_check < 1.0):
            return False
        self._last_idle_check = now
        assigned = list(self.consumer.assignment())
        if not assigned or not self._owned:
            return False
        try:
            ends = self.consumer.end_offsets(assigned, timeout_ms=5000)
            behind = {tp: ends[tp] - self.consumer.position(tp, timeout_ms=5000) for tp in assigned}
        except Exception as exc:  # broker unreachable: not idle, keep trying
            log.info("waiting for the broker", error=str(exc)[:200])
            return False
        if any(v > 0 for v in behind.values()):
            return False
        self._drain()
        return True

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S:
            return
        msgs0, t0 = self._progress_mark
        rate = (self.stats.messages - msgs0) / max(now - t0, 1e-9)
        self._progress_mark = (self.stats.messages, now)
        self._last_progress = now
        self._rows_per_s = round(rate, 1)
        self._write_status()
        log.info("ingest progress", rows_per_s=round(rate, 1), messages=self.stats.messages,
                 affect_rows=self.stats.affect_rows, symptom_rows=self.stats.symptom_rows,
                 duplicates=self.stats.duplicates, dead_letters=self.stats.dead_letters,
                 lag=dict(self._lag), pending=self._batch.n_messages)

    def snapshot(self) -> dict:
        """This worker's state for ``affectwatch ingest status`` and ``/metrics`` (see ingest.status)."""
        st = self.stats
        return {
            "worker": self.worker_id, "group": self.group, "state": self.state, "pid": os.getpid(),
            "metrics_port": self.metrics_server.server_port if self.metrics_server else None,
            "owned": sorted(f"{tp.topic}[{tp.partition}]" for tp in self._owned),
            "lag": dict(self._lag), "rows_per_s": self._rows_per_s, "messages": st.messages,
            "affect_rows": st.affect_rows, "symptom_rows": st.symptom_rows, "duplicates": st.duplicates,
            "dead_letters": st.dead_letters, "dead_by_reason": dict(st.dead_by_reason),
            "last_commit_unix": self._last_commit_unix, "stuck": list(self._stuck.values()),
            "updated_at": time.time(),
        }

    def _write_status(self) -> None:
        from ingest.status import write_snapshot

        try:
            write_snapshot(self._status_path, self.snapshot())
        except OSError as exc:  # status is best effort; ingest goes on
            log.debug("status file not written", error=str(exc)[:200])

    # -- rebalance -------------------------------------------------------------------------
    # kafka-python calls the listener on its IO thread, which also sends the heartbeats: a listener that
    # waits for the warehouse (a batch commit, the offsets query) stalls the heartbeats and, past the
    # session timeout, gets the member expelled. So the callbacks only record the delta (cooperative:
    # ``revoked``/``added`` are just the partitions that move) and pause added partitions; the main loop
    # positions them (``_position_added``). Records of a revoked partition still pending here are
    # written normally: the sink's fence drops whatever the partition's new owner has committed.
    def on_revoked(self, revoked) -> None:
        if self._closing:
            return
        with self._rebalance_lock:
            self._owned = self._owned - set(revoked)
            self._to_position -= set(revoked)
        log.info("partitions revoked", partitions=_names(revoked), owned=len(self._owned))

    def on_assigned(self, added) -> None:
        self.consumer.pause(*added)  # no fetch before the main loop has seeked it to the warehouse offset
        with self._rebalance_lock:
            self._owned = self._owned | set(added)
            self._to_position |= set(added)
        # a (re)added partition is resumed: a still-unreadable one is parked again on its first fetch
        self._stuck = {k: v for k, v in self._stuck.items()
                       if TopicPartition(*k) in self._owned and TopicPartition(*k) not in added}
        log.info("partitions assigned", partitions=_names(added), owned=len(self._owned))

    def _position_added(self) -> None:
        """Seek the partitions added by the last rebalance to the offsets stored in the warehouse
        (else the earliest offset), then resume them. Main thread; heartbeats go on meanwhile."""
        with self._rebalance_lock:
            todo, self._to_position = self._to_position, set()
        if not todo:
            return
        # records of these partitions still pending from an earlier ownership are committed first, so a
        # batch never holds one offset twice; then the writer is idle and the connection is free
        self._flush()
        self._drain()
        stored = stored_offsets(self.con, self.group, sorted({tp.topic for tp in todo}))
        positioned, fresh = set(), 0
        for tp in todo:
            off = stored.get((tp.topic, tp.partition))
            try:
                if off is None:
                    self.consumer.seek_to_beginning(tp)
                    fresh += 1
                else:
                    self.consumer.seek(tp, off)
            except (ValueError, IllegalStateError):  # revoked meanwhile: nothing to position
                continue
            positioned.add(tp)
        if positioned:
            self.consumer.resume(*positioned)
        todo = positioned
        log.info("partitions positioned", partitions=_names(todo),
                 from_warehouse={f"{t}[{p}]": o for (t, p), o in stored.items() if TopicPartition(t, p) in todo},
                 from_earliest=fresh)


def _names(tps) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps)


def _error_text(exc: BaseException) -> str:
    """'<Type>: <message>' once (kafka-python's errors already start with their class name)."""
    text = str(exc)
    name = type(exc).__name__
    return (text if text.startswith(name) else f"{name}: {text}")[:300]


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked) -> None:
        if revoked:
            self.worker.on_revoked(revoked)

    def on_partitions_assigned(self, assigned) -> None:
        if assigned:
            self.worker.on_assigned(assigned)


def run_worker(settings: Settings | None = None, **kwargs) -> WorkerStats:
    return IngestWorker(settings, **kwargs).run()
