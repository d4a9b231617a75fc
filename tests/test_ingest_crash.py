"""Crash safety: kill -9 the worker mid-stream three times; no loss, no duplicates, exactly-once offsets.

On both catalogs: the default SQLite file and PostgreSQL (a real throwaway cluster)."""
from __future__ import annotations

import random
import signal
import time

import pytest

from ingest.bench import window_dicts
from tests.fixtures.kafka import send_json

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

N = 20_000
RETRIED = 1_500


def _rows(env) -> int:
    return env.query("select count(*) from affect_windows")[0][0]


def _wait_for_progress(env, proc, above: int, timeout: float = 90.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"worker exited early: {env.log_tail(proc)}"
        n = _rows(env)
        if n > above:
            return n
        time.sleep(0.1)
    raise AssertionError(f"worker made no progress in {timeout}s: {env.log_tail(proc)}")


@pytest.mark.parametrize("ingest_env", ["sqlite", "postgres"], indirect=True)
def test_kill_9_mid_stream_loses_and_duplicates_nothing(ingest_env, kafka_producer):
    windows = list(window_dicts(N, devices=400, device_prefix="crash", seed=3))
    send_json(kafka_producer, ingest_env.affect_topic, windows)
    # a producer retry re-sends windows that were already delivered
    send_json(kafka_producer, ingest_env.affect_topic, windows[:RETRIED])

    rnd = random.Random(11)
    seen = 0
    for _ in range(3):
        proc = ingest_env.start("--max-batch", "250", "--instance-id", "crash-worker")
        seen = _wait_for_progress(ingest_env, proc, seen)
        time.sleep(rnd.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        seen = _rows(ingest_env)
        assert seen < N, "the worker finished before it was killed: not a mid-stream crash"

    stats = ingest_env.run("--instance-id", "crash-worker")
    assert stats["messages"] > 0

    total, distinct = ingest_env.query(
        "select count(*), count(distinct (device_id, window_start)) from affect_windows")[0]
    assert total == distinct == N
    # each Kafka record was processed by exactly one committed transaction
    n_messages, n_dups = ingest_env.query("select sum(n_messages), sum(n_duplicates) from ingest_batches")[0]
    assert n_messages == N + RETRIED
    assert n_dups == RETRIED
    offsets = ingest_env.query("select kafka_topic, kafka_partition, kafka_offset, count(*) from affect_windows "
                               "group by all having count(*) > 1")
    assert offsets == []
    stored = dict(((t, p), o) for t, p, o in ingest_env.query(
        "select topic, kafka_partition, max(next_offset) from ingest_offsets group by all"))
    assert stored == {k: v for k, v in ingest_env.end_offsets().items() if v > 0}
