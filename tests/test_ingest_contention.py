"""Catalog contention never stops a worker: it waits (with backoff and a status) and retries the batch
as one transaction, so nothing is lost or duplicated. On both catalogs (SQLite file, PostgreSQL)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.bench import window_dicts
from tests.fixtures.kafka import send_json

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

BOTH = pytest.mark.parametrize("ingest_env", ["sqlite", "postgres"], indirect=True)


def _rows(env) -> int:
    return env.query("select count(*) from affect_windows")[0][0]


def _wait_rows(env, procs, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"a worker died (exit {p.returncode}): {env.log_tail(p, 30)}"
        if _rows(env) >= n:
            return
        time.sleep(0.5)
    raise AssertionError(f"only {_rows(env)} of {n} rows after {timeout}s: " +
                         " || ".join(env.log_tail(p) for p in procs))


def _stop(env, procs) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=120)
        assert p.returncode == 0, f"worker exited {p.returncode}: {env.log_tail(p, 30)}"


def _exactly_once(env, n: int) -> None:
    total, distinct = env.query("select count(*), count(distinct (device_id, window_start)) from affect_windows")[0]
    assert total == distinct == n
    assert env.query("select sum(n_messages) from ingest_batches")[0][0] == n
    assert env.query("select kafka_topic, kafka_partition, kafka_offset from affect_windows "
                     "group by all having count(*) > 1") == []
    stored = dict(((t, p), o) for t, p, o in env.query(
        "select topic, kafka_partition, max(next_offset) from ingest_offsets group by all"))
    assert stored == {k: v for k, v in env.end_offsets().items() if v > 0}


def _log_events(proc) -> list[dict]:
    out = []
    for line in Path(proc.log_path).read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _owns_partitions(proc) -> bool:
    """The worker's latest assignment (its log) includes at least one partition."""
    moves = [e for e in _log_events(proc) if e.get("event") in ("partitions assigned", "partitions revoked")]
    return bool(moves) and moves[-1].get("owned", 0) > 0


@BOTH
@pytest.mark.timeout(1500)
def test_two_workers_in_one_group_share_the_catalog_without_dying(ingest_env, kafka_producer):
    n = 5_000
    # small batches: many commits from both workers race for the same catalog
    procs = [ingest_env.start("--max-batch", "150", "--instance-id", f"pair-{i}", log_name=f"pair{i}")
             for i in range(2)]
    # both must own partitions before the data arrive; otherwise on a fast machine the first worker
    # drains everything before the second one has even joined, and nothing is shared
    deadline = time.monotonic() + 300
    while not all(_owns_partitions(p) for p in procs):
        assert time.monotonic() < deadline, "both workers should own partitions: " + \
            " || ".join(ingest_env.log_tail(p) for p in procs)
        for p in procs:
            assert p.poll() is None, f"a worker died (exit {p.returncode}): {ingest_env.log_tail(p, 30)}"
        time.sleep(0.5)
    send_json(kafka_producer, ingest_env.affect_topic, window_dicts(n, devices=600, device_prefix="pair", seed=5))
    _wait_rows(ingest_env, procs, n, timeout=900)  # generous: a shared 2-core machine can be at load 50
    _stop(ingest_env, procs)
    _exactly_once(ingest_env, n)


LOCKER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # the catalog's write lock, as another writer's long commit holds it
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_worker_waits_for_a_locked_sqlite_catalog_and_then_commits(ingest_env, kafka_producer):
    """SQLite refuses a writer at once ("database is locked") while another holds the lock: the
    worker used to die after 10 quick retries; now it waits with a logged status and commits after."""
    first = list(window_dicts(3_000, devices=300, device_prefix="lock", seed=8))
    send_json(kafka_producer, ingest_env.affect_topic, first[:1_000])
    proc = ingest_env.start("--max-batch", "200", log_name="locked")
    _wait_rows(ingest_env, [proc], 1_000, timeout=240)

    catalog = ingest_env.settings.catalog.removeprefix("sqlite:")
    hold = 12.0
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, catalog, str(hold)], stdout=subprocess.PIPE, text=True)
    assert locker.stdout.readline().strip() == "locked"
    send_json(kafka_producer, ingest_env.affect_topic, first[1_000:])
    assert locker.wait(timeout=hold + 120) == 0
    _wait_rows(ingest_env, [proc], len(first), timeout=240)
    _stop(ingest_env, [proc])
    _exactly_once(ingest_env, len(first))

    events = _log_events(proc)
    waits = [e for e in events if e.get("status") == "waiting_for_catalog"]
    assert waits, "the worker never reported waiting for the locked catalog"
    assert "database is locked" in waits[0]["error"]
    assert any(e.get("status") == "ok" and e.get("what") == "ingest batch" for e in events)
