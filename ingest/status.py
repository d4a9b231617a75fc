"""What an operator needs to see about ingest: lag, throughput, dead letters, commits, stuck partitions.

Two sources, one shape:
- every running worker keeps a small JSON snapshot of itself (state, owned partitions, lag, rows/s,
  stuck partitions, dead letters by reason) in ``<data_dir>/ingest/workers/`` (rewritten atomically
  every few seconds; the ``/metrics`` endpoint renders the same snapshot);
- ``collect_status`` (``affectwatch ingest status``) joins the warehouse's committed offsets, dead
  letters and batches with the broker's end offsets — the lag it prints needs no worker to be up.

``end_offsets`` and ``partition_lag`` are the one definition of the broker's end offsets and of a
partition's consumer lag: the catch-up bars (``ingest.backlog``) and the worker's lag gauge use them.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from affectwatch.settings import Settings

UTC = timezone.utc
STALE_AFTER_S = 60.0  # a snapshot older than this belongs to a worker that is gone


def workers_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "ingest" / "workers"


def write_snapshot(path: Path, snapshot: dict) -> None:
    """Replace the worker's snapshot file atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(snapshot, default=str))
    os.replace(tmp, path)


def read_snapshots(settings: Settings, group: str | None = None) -> list[dict]:
    """Live workers' snapshots (those updated within STALE_AFTER_S), optionally of one group."""
    out = []
    now = time.time()
    for p in sorted(workers_dir(settings).glob("*.json")):
        try:
            snap = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if now - float(snap.get("updated_at", 0)) > STALE_AFTER_S:
            continue
        if group is None or snap.get("group") == group:
            out.append(snap)
    return out


def end_offsets(settings: Settings, topics: list[str], bootstrap: str | None = None) -> dict[tuple[str, int], int]:
    """The broker's end offset of every partition of ``topics`` (``bootstrap`` overrides the settings'
    servers); raises when the broker cannot be reached."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    kw = settings.kafka.client_kwargs()
    if bootstrap:
        kw["bootstrap_servers"] = [b.strip() for b in bootstrap.split(",") if b.strip()]
    c = KafkaConsumer(**kw, request_timeout_ms=10_000)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(c.partitions_for_topic(t) or ())]
        ends = c.end_offsets(tps, timeout_ms=10_000) if tps else {}
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}
    finally:
        c.close()


def partition_lag(end_offset: int, next_offset: int | None) -> int:
    """Consumer lag of one partition: the messages between the next offset to read (none committed: 0)
    and the broker's end offset."""
    return max(0, end_offset - (next_offset or 0))


def collect_status(settings: Settings, *, group: str | None = None, bootstrap: str | None = None,
                   window_s: float = 60.0) -> dict:
    """The whole picture for one consumer group (see the module docstring)."""
    from affectwatch.warehouse import session

    group = group or settings.kafka.group_id
    topics = [settings.kafka.affect_topic, settings.kafka.symptom_topic]
    with session(settings, read_only=True) as con:
        committed = {(t, int(p)): (int(o), ts) for t, p, o, ts in con.execute(
            "select topic, kafka_partition, max(next_offset), max(committed_at) from ingest_offsets "
            "where consumer_group = ? group by all", [group]).fetchall()}
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        n_recent, last_commit = con.execute(
            "select coalesce(sum(n_messages) filter (where committed_at >= ?), 0), max(committed_at) "
            "from ingest_batches where consumer_group = ?", [since, group]).fetchone()
        dead = dict(con.execute("select reason, count(*) from dead_letters group by all order by 2 desc").fetchall())
    try:
        ends = end_offsets(settings, topics, bootstrap)
    except Exception as exc:  # noqa: BLE001 - the status reports an unreachable broker, it does not fail
        ends = f"{type(exc).__name__}: {exc}"[:200]
    workers = read_snapshots(settings, group)
    stuck = [s for w in workers for s in w.get("stuck", [])]
    owners = {p: w.get("worker") for w in workers for p in w.get("owned", [])}
    partitions = []
    keys = sorted(set(committed) | (set(ends) if isinstance(ends, dict) else set()))
    for t, p in keys:
        nxt, ts = committed.get((t, p), (None, None))
        end = ends.get((t, p)) if isinstance(ends, dict) else None
        lag = None if end is None else partition_lag(end, nxt)
        partitions.append({"topic": t, "partition": p, "committed_offset": nxt, "end_offset": end, "lag": lag,
                           "last_commit": ts.isoformat() if ts else None, "owner": owners.get(f"{t}[{p}]")})
    return {
        "group": group,
        "broker": "up" if isinstance(ends, dict) else f"unreachable ({ends})",
        "total_lag": sum(p["lag"] or 0 for p in partitions),
        "rows_per_s": round(float(n_recent) / window_s, 1),
        "last_commit": last_commit.isoformat() if last_commit else None,
        "dead_letters": dead,
        "stuck_partitions": stuck,
        "workers": [{k: w.get(k) for k in ("worker", "state", "owned", "rows_per_s", "updated_at", "metrics_port")}
                    for w in workers],
        "partitions": partitions,
    }


def render_status(st: dict) -> str:
    """Human-readable status (the CLI prints this, then the JSON object as its last line)."""
    lines = [f"group {st['group']}: broker {st['broker']}, total lag {st['total_lag']}, "
             f"{st['rows_per_s']} rows/s (last minute), last commit {st['last_commit'] or 'never'}"]
    lines.append(f"workers: {len(st['workers'])} live" + "".join(
        f"\n  {w['worker']}: {w['state']}, {len(w['owned'] or [])} partitions, {w['rows_per_s']} rows/s"
        for w in st["workers"]))
    lines.append("dead letters: " + (", ".join(f"{r}={n}" for r, n in st["dead_letters"].items()) or "none"))
    if st["stuck_partitions"]:
        lines.append("STUCK partitions (not readable; other partitions keep flowing):")
        lines += [f"  {s['topic']}[{s['partition']}] at offset {s['offset']}: {s['error']}" for s in st["stuck_partitions"]]
    else:
        lines.append("stuck partitions: none")
    lines.append(f"{'partition':<28}{'committed':>12}{'end':>12}{'lag':>10}  last commit / owner")
    for p in st["partitions"]:
        lines.append(f"{p['topic'] + '[' + str(p['partition']) + ']':<28}{_n(p['committed_offset']):>12}"
                     f"{_n(p['end_offset']):>12}{_n(p['lag']):>10}  {p['last_commit'] or '-'} {p['owner'] or ''}")
    return "\n".join(lines)


def _n(v) -> str:
    return "-" if v is None else str(v)
