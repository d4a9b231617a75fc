"""The worker recovers when kafka-python leaves it in a group with no partitions (seen with 3.0.12:
assigned, revoked milliseconds later, then 'stable' with an empty assignment for minutes)."""
from __future__ import annotations

import threading
import time

import pytest

from tests.fixtures.kafka import send_json

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def _run_until_stuck(ingest_env, kafka_producer, monkeypatch, make_stuck):
    """Start a worker, let it get its partitions, put it in a stuck state, send more; it must ingest all."""
    from ingest import consume
    from ingest.bench import window_dicts

    monkeypatch.setattr(consume, "EMPTY_ASSIGNMENT_S", 3.0)
    worker = consume.IngestWorker(ingest_env.settings, until_idle=6.0, install_signal_handlers=False,
                                  create_topics=False)
    send_json(kafka_producer, ingest_env.affect_topic,
              list(window_dicts(300, devices=100, device_prefix="stuck-a", seed=21)))
    result = {}
    # daemon + stop() in finally: a failing test must not leave a worker thread that keeps pytest alive
    thread = threading.Thread(target=lambda: result.setdefault("stats", worker.run()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        # settle first: the first batch is ingested, so the group's start-up rebalances are over
        while not worker._owned or worker.stats.affect_rows < 300:
            assert time.monotonic() < deadline, "never assigned / first batch not ingested"
            time.sleep(0.2)
        stuck = worker.consumer
        make_stuck(worker)
        send_json(kafka_producer, ingest_env.affect_topic,
                  list(window_dicts(300, devices=100, device_prefix="stuck-b", seed=22)))
        thread.join(timeout=45)
        assert not thread.is_alive(), "the worker never recovered its partitions"
    finally:
        worker.stop()
        thread.join(timeout=20)
    assert worker.consumer is not stuck, "the watchdog did not replace the consumer"
    n = ingest_env.query("select count(*), count(distinct (device_id, window_start)) from affect_windows")[0]
    assert n == (600, 600)


def test_worker_rejoins_when_revoked_and_never_reassigned(ingest_env, kafka_producer, monkeypatch):
    """The CI hang: partitions revoked, no new assignment, while ``assignment()`` still lists them."""

    def revoked_without_reassignment(worker):
        parts = worker.consumer.assignment()
        worker.consumer.pause(*parts)  # nothing is fetched any more ...
        worker._owned = set()  # ... after a revocation (what on_revoked leaves) that no assignment follows

    _run_until_stuck(ingest_env, kafka_producer, monkeypatch, revoked_without_reassignment)


def test_worker_rejoins_when_left_without_partitions(ingest_env, kafka_producer, monkeypatch):
    """A member with no partitions at all that does not rejoin by itself."""
    _run_until_stuck(ingest_env, kafka_producer, monkeypatch, lambda worker: worker.consumer.unsubscribe())
