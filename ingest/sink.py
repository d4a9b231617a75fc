"""Warehouse sink for the ingest worker: one batch -> one DuckLake transaction.

A batch's accepted affect windows (de-duplicated on ``(device_id, window_start)`` within the
batch and against the warehouse), symptom reports (revisions kept, exact repeats dropped),
dead letters, the next Kafka offset of every partition it touched and an ``ingest_batches``
row are written in ONE transaction, from Arrow tables (no row-by-row inserts). On start the
consumer seeks to the offsets stored here, so each Kafka record lands exactly once.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb
import msgspec
import pyarrow as pa

from affectwatch.logs import get_logger
from affectwatch.warehouse import transaction
from ingest.contracts import AFFECT_COLUMNS, AffectWindow, SymptomReport
from ingest.validate import Rejection

log = get_logger(__name__)

UTC = timezone.utc
TS_US = pa.timestamp("us", tz="UTC")
TS_MS = pa.timestamp("ms", tz="UTC")

AFFECT_FIELDS = (
    "device_id", "region_id", "site_type", "window_start", "window_end", "n_observations", "n_abstained",
    "valence_mean", "arousal_mean", "valence_sd", "arousal_sd", "distress_share", "confidence_mean",
    "modality", "model_version", "dp_epsilon", "schema_version",
)
AFFECT_DUCKDB_TYPES = {**AFFECT_COLUMNS, "window_start": "TIMESTAMPTZ", "window_end": "TIMESTAMPTZ"}
AFFECT_TABLE_COLUMNS = (
    *AFFECT_FIELDS, "quality_pose_stability", "quality_lighting", "quality_snr_db", "simulated",
    "kafka_topic", "kafka_partition", "kafka_offset", "produced_at", "ingested_at",
)
SYMPTOM_TABLE_COLUMNS = (
    "region_id", "syndrome", "period_start", "period_end", "count", "denominator", "source", "reported_at",
    "schema_version", "origin", "kafka_partition", "kafka_offset", "ingested_at",
)
DEAD_LETTER_COLUMNS = ("topic", "kafka_partition", "kafka_offset", "message_key", "raw", "reason", "detail",
                       "produced_at", "received_at")


@dataclass
class DeadLetter:
    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    raw: bytes | None
    reason: str
    detail: str
    timestamp_ms: int | None


@dataclass
class PendingBatch:
    """Records accumulated by the consumer since the last commit (parallel lists, cheap appends)."""

    affect: list[AffectWindow] = field(default_factory=list)
    a_topic: list[str] = field(default_factory=list)
    a_partition: list[int] = field(default_factory=list)
    a_offset: list[int] = field(default_factory=list)
    a_ts: list[int] = field(default_factory=list)
    a_sim: list[bool] = field(default_factory=list)
    symptoms: list[SymptomReport] = field(default_factory=list)
    s_topic: list[str] = field(default_factory=list)
    s_partition: list[int] = field(default_factory=list)
    s_offset: list[int] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    n_messages: int = 0
    started: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        return self.n_messages

    def add_rejection(self, topic: str, partition: int, offset: int, key: bytes | None, raw: bytes | None,
                      rejection: Rejection, timestamp_ms: int | None) -> None:
        self.dead.append(DeadLetter(topic, partition, offset, key, raw, rejection.reason.value,
                                    rejection.detail, timestamp_ms))


@dataclass
class BatchResult:
    n_messages: int
    n_affect: int
    n_symptoms: int
    n_duplicates: int
    n_dead_letters: int
    seconds: float
    next_offsets: dict[tuple[str, int], int]
    dead: list[DeadLetter]


def _ts_ms(values: list[int | None]) -> pa.Array:
    return pa.array([v if v is not None and v >= 0 else None for v in values], pa.int64()).cast(TS_MS)


_ENCODER = msgspec.json.Encoder()
# from_json structure of the canonical AffectWindow JSON re-encoded by msgspec after validation
_AFFECT_JSON_STRUCTURE = json.dumps({
    **{name: AFFECT_DUCKDB_TYPES[name] for name in AFFECT_FIELDS},
    "quality": {"pose_stability": "DOUBLE", "lighting": "DOUBLE", "snr_db": "DOUBLE"},
})


def affect_table(b: PendingBatch) -> pa.Table:
    """Arrow table of the accepted windows: validated structs re-encoded as canonical JSON + Kafka metadata.

    Re-encoding the validated structs (not the raw bytes) means DuckDB parses exactly what msgspec
    accepted (no duplicate keys, UTC timestamps); it costs ~0.5 us per record in C, which keeps the
    Python side of a batch small so that the warehouse write overlaps with consuming.
    """
    enc = _ENCODER.encode
    return pa.table({
        "doc": pa.array([enc(w) for w in b.affect], pa.string()),
        "simulated": pa.array(b.a_sim, pa.bool_()),
        "kafka_topic": pa.array(b.a_topic, pa.string()),
        "kafka_partition": pa.array(b.a_partition, pa.int32()),
        "kafka_offset": pa.array(b.a_offset, pa.int64()),
        "produced_ms": pa.array(b.a_ts, pa.int64()),
    })


def symptom_table(b: PendingBatch, ingested_at: datetime) -> pa.Table:
    rs = b.symptoms
    return pa.table({
        "region_id": pa.array([r.region_id for r in rs], pa.string()),
        "syndrome": pa.array([r.syndrome for r in rs], pa.string()),
        "period_start": pa.array([r.period_start for r in rs], pa.date32()),
        "period_end": pa.array([r.period_end for r in rs], pa.date32()),
        "count": pa.array([r.count for r in rs], pa.int64()),
        "denominator": pa.array([r.denominator for r in rs], pa.int64()),
        "source": pa.array([r.source for r in rs], pa.string()),
        "reported_at": pa.array([r.reported_at for r in rs], TS_US),
        "schema_version": pa.array([r.schema_version for r in rs], pa.int32()),
        "origin": pa.array([f"kafka:{t}" for t in b.s_topic], pa.string()),
        "kafka_partition": pa.array(b.s_partition, pa.int32()),
        "kafka_offset": pa.array(b.s_offset, pa.int64()),
        "ingested_at": pa.array([ingested_at] * len(rs), TS_US),
    })


def dead_letter_table(dead: list[DeadLetter], received_at: datetime) -> pa.Table:
    return pa.table({
        "topic": pa.array([d.topic for d in dead], pa.string()),
        "kafka_partition": pa.array([d.partition for d in dead], pa.int32()),
        "kafka_offset": pa.array([d.offset for d in dead], pa.int64()),
        "message_key": pa.array([d.key for d in dead], pa.binary()),
        "raw": pa.array([d.raw for d in dead], pa.binary()),
        "reason": pa.array([d.reason for d in dead], pa.string()),
        "detail": pa.array([d.detail for d in dead], pa.string()),
        "produced_at": _ts_ms([d.timestamp_ms for d in dead]),
        "received_at": pa.array([received_at] * len(dead), TS_US),
    })


def stored_offsets(con: duckdb.DuckDBPyConnection, group: str, topics: list[str] | None = None,
                   since: datetime | None = None) -> dict[tuple[str, int], int]:
    """The next offset per (topic, partition) committed in the warehouse for ``group`` (``since``: only
    commits from then on — DuckLake then reads just the recent files, by their committed_at statistics)."""
    sql = "select topic, kafka_partition, max(next_offset) from ingest_offsets where consumer_group = ?"
    params: list = [group]
    if since is not None:
        sql += " and committed_at >= ?"
        params.append(since)
    if topics:
        sql += " and topic in (" + ",".join("?" * len(topics)) + ")"
        params += list(topics)
    rows = con.execute(sql + " group by all", params).fetchall()
    return {(t, int(p)): int(o) for t, p, o in rows}


_AFFECT_SELECT = ", ".join(
    [f"j.{c} as {c}" for c in AFFECT_FIELDS]
    + [f"j.quality.{q} as quality_{q}" for q in ("pose_stability", "lighting", "snr_db")]
    + ["simulated", "kafka_topic", "kafka_partition", "kafka_offset",
       "case when produced_ms >= 0 then epoch_ms(produced_ms) end as produced_at", "$now::timestamptz as ingested_at"]
)
# de-duplicate on (device_id, window_start) within the batch (first offset wins) and against the
# warehouse; the range predicate lets DuckLake prune files by their window_start statistics.
_AFFECT_INSERT = (
    f"insert into affect_windows ({', '.join(AFFECT_TABLE_COLUMNS)}) "
    f"select b.* from (select {_AFFECT_SELECT} from "
    f"(select from_json(doc, '{_AFFECT_JSON_STRUCTURE}') as j, * exclude (doc) from _aw_batch) "
    "qualify row_number() over (partition by j.device_id, j.window_start order by kafka_offset) = 1) b "
    "where not exists (select 1 from affect_windows w where w.window_start between $lo and $hi "
    "and w.window_start = b.window_start and w.device_id = b.device_id)"
)
_SYMPTOM_INSERT = (
    f"insert into symptom_reports ({', '.join(SYMPTOM_TABLE_COLUMNS)}) "
    f"select {', '.join('b.' + c for c in SYMPTOM_TABLE_COLUMNS)} from "
    "(select * from _sr_batch qualify row_number() over (partition by region_id, syndrome, period_start, "
    "period_end, source, reported_at, count, denominator order by kafka_offset) = 1) b "
    "where not exists (select 1 from symptom_reports s where s.period_start between $lo and $hi "
    "and s.region_id = b.region_id and s.syndrome = b.syndrome and s.period_start = b.period_start "
    "and s.period_end = b.period_end and s.source = b.source and s.reported_at = b.reported_at "
    "and s.count = b.count and s.denominator is not distinct from b.denominator)"
)


@dataclass
class PreparedBatch:
    """A batch turned into Arrow tables (Python work, done on the consumer thread) ready to write."""

    batch: PendingBatch
    group: str
    now: datetime
    affect: pa.Table | None
    affect_range: tuple[datetime, datetime] | None
    symptoms: pa.Table | None
    symptom_range: tuple | None
    dead: pa.Table | None
    offsets: pa.Table
    max_lag: int | None = None


def prepare_batch(b: PendingBatch, group: str, max_lag: int | None = None) -> PreparedBatch:
    now = datetime.now(UTC)
    starts = [w.window_start for w in b.affect]
    periods = [r.period_start for r in b.symptoms]
    offsets = pa.table({
        "consumer_group": pa.array([group] * len(b.next_offsets), pa.string()),
        "topic": pa.array([t for t, _ in b.next_offsets], pa.string()),
        "kafka_partition": pa.array([p for _, p in b.next_offsets], pa.int32()),
        "next_offset": pa.array(list(b.next_offsets.values()), pa.int64()),
        "committed_at": pa.array([now] * len(b.next_offsets), TS_US),
    })
    return PreparedBatch(
        batch=b, group=group, now=now,
        affect=affect_table(b) if b.affect else None,
        affect_range=(min(starts), max(starts)) if starts else None,
        symptoms=symptom_table(b, now) if b.symptoms else None,
        symptom_range=(min(periods), max(periods)) if periods else None,
        dead=dead_letter_table(b.dead, now) if b.dead else None,
        offsets=offsets, max_lag=max_lag,
    )


def write_batch(con: duckdb.DuckDBPyConnection, b: PendingBatch, group: str, *, max_lag: int | None = None,
                max_seconds: float | None = None, on_wait=None) -> BatchResult:
    """Write one batch and its next offsets in one warehouse transaction (retried on catalog contention)."""
    return write_prepared(con, prepare_batch(b, group, max_lag), max_seconds=max_seconds, on_wait=on_wait)


_BATCH_VIEWS = ("_aw_batch", "_sr_batch", "_dl_batch", "_off_batch")


def write_prepared(con: duckdb.DuckDBPyConnection, p: PreparedBatch, *, max_seconds: float | None = None,
                   on_wait=None) -> BatchResult:
    """The SQL half of ``write_batch`` (DuckDB releases the GIL, so this overlaps with consuming).

    Catalog contention (another worker committing, a SQLite lock, a PostgreSQL serialization failure)
    rolls the whole batch back and retries it as one transaction with jittered backoff — by default for
    as long as it takes (``max_seconds=None``): a busy catalog delays a worker, it never stops it.
    ``on_wait(attempt, waited_s, error)`` is called before each retry (for the worker's status).
    """
    t0 = time.perf_counter()
    b = p.batch
    n_messages = b.n_messages

    def write() -> tuple[int, int, int]:
        nonlocal n_messages
        aw, sr, dl, offsets, n_messages = _fence(con, p)
        if n_messages == 0:
            return 0, 0, 0  # another member already committed all of it: write nothing
        # serialise batch commits (migration 051): a concurrent commit that read the same offsets now
        # conflicts instead of appending the same records a second time
        con.execute("delete from ingest_fence")
        con.execute("insert into ingest_fence values (?, ?)", [p.group, p.now])
        n_aw = n_sr = 0
        if aw is not None:
            con.register("_aw_batch", aw)
            lo, hi = p.affect_range
            n_aw = con.execute(_AFFECT_INSERT, {"lo": lo, "hi": hi, "now": p.now}).fetchone()[0]
        if sr is not None:
            con.register("_sr_batch", sr)
            lo, hi = p.symptom_range
            n_sr = con.execute(_SYMPTOM_INSERT, {"lo": lo, "hi": hi}).fetchone()[0]
        if dl is not None:
            con.register("_dl_batch", dl)
            con.execute(f"insert into dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) "
                        f"select {', '.join(DEAD_LETTER_COLUMNS)} from _dl_batch")
        if offsets is not None:
            con.register("_off_batch", offsets)
            con.execute("insert into ingest_offsets (consumer_group, topic, kafka_partition, next_offset, committed_at) "
                        "select consumer_group, topic, kafka_partition, next_offset, committed_at from _off_batch")
        n_dup = (len(aw) - n_aw if aw is not None else 0) + (len(sr) - n_sr if sr is not None else 0)
        con.execute(
            "insert into ingest_batches (consumer_group, committed_at, n_messages, n_affect, n_symptoms, "
            "n_duplicates, n_dead_letters, max_lag, seconds) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [p.group, p.now, n_messages, n_aw, n_sr, n_dup, len(dl) if dl is not None else 0, p.max_lag,
             time.perf_counter() - t0],
        )
        return n_aw, n_sr, n_dup

    try:
        n_aw, n_sr, n_dup = transaction(con, write, max_seconds=max_seconds, what="ingest batch", on_wait=on_wait)
    finally:
        for name in _BATCH_VIEWS:
            try:
                con.unregister(name)
            except Exception:
                pass
    return BatchResult(n_messages, int(n_aw), int(n_sr), int(n_dup), len(b.dead), time.perf_counter() - t0,
                       dict(b.next_offsets), b.dead)


FENCE_LOOKBACK = timedelta(minutes=30)


def _fence(con: duckdb.DuckDBPyConnection, p: PreparedBatch):
    """Drop the records another member of the group has committed since this batch was read.

    A worker that waited long for the catalog may have lost its partitions in a rebalance, and the
    new owner resumes from the offsets stored here. Read inside the batch's transaction (and again on
    every retry), the stored offsets tell which of this batch's records are already in: only the
    rest is written, so a late commit never writes a record twice.
    Returns (affect, symptoms, dead letters, offsets, messages left).
    """
    b = p.batch
    # any commit past this batch's first offsets happened after this worker was assigned the partition,
    # i.e. recently: reading the last FENCE_LOOKBACK of commits is enough and stays cheap
    stored = (stored_offsets(con, p.group, sorted({t for t, _ in b.first_offsets}), since=p.now - FENCE_LOOKBACK)
              if b.first_offsets else {})
    cut = {tp: stored[tp] for tp, first in b.first_offsets.items() if stored.get(tp, -1) > first}
    if not cut:
        return p.affect, p.symptoms, p.dead, (p.offsets if b.next_offsets else None), b.n_messages
    import pyarrow.compute as pc

    removed = 0

    def keep(t: pa.Table | None, topic_col: str, topics: list[str] | None = None):
        nonlocal removed
        if t is None:
            return None
        mask = None
        for (topic, part), off in cut.items():
            tcol = pa.array(topics, pa.string()) if topics is not None else t[topic_col]
            stale = pc.and_(pc.and_(pc.equal(tcol, topic), pc.equal(t["kafka_partition"], part)),
                            pc.less(t["kafka_offset"], off))
            mask = stale if mask is None else pc.or_(mask, stale)
        kept = t.filter(pc.invert(mask))
        removed += len(t) - len(kept)
        return kept if len(kept) else None

    aw = keep(p.affect, "kafka_topic")
    sr = keep(p.symptoms, "", b.s_topic)
    dl = keep(p.dead, "topic")
    ahead = [i for i, (t, part) in enumerate(zip(p.offsets["topic"].to_pylist(), p.offsets["kafka_partition"].to_pylist()))
             if p.offsets["next_offset"][i].as_py() > stored.get((t, part), -1)]
    offsets = p.offsets.take(ahead) if ahead else None
    log.warning("batch partly committed by another group member; writing only the rest", status="fenced",
                partitions={f"{t}[{q}]": o for (t, q), o in cut.items()}, skipped=removed,
                kept=b.n_messages - removed)
    return aw, sr, dl, offsets, b.n_messages - removed
