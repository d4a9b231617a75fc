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
    worker = consume.IngestWorker(ingest_env.settings, until_idle=3.0, install_signal_handlers=False,
                                  create_topics=False)
    send_json(kafka_producer, ingest_env.affect_topic,
              list(window_dicts(300, devices=100, device_prefix="stuck-a", seed=21)))
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("stats", worker.run()))
    thread.start()
    deadline = time.monotonic() + 60
    while not worker.consumer or not worker.consumer.assignment() or not worker._owned:
        assert time.monotonic() < deadline, "never assigned"
        time.sleep(0.2)
    stuck = worker.consumer
    make_stuck(worker)
    send_json(kafka_producer, ingest_env.affect_topic,
              list(window_dicts(300, devices=100, device_prefix="stuck-b", seed=22)))
    thread.join(timeout=45)
    assert not thread.is_alive(), "the worker never recovered its partitions"
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
    from ingest import consume
    from ingest.bench import window_dicts

    monkeypatch.setattr(consume, "EMPTY_ASSIGNMENT_S", 3.0)
    worker = consume.IngestWorker(ingest_env.settings, until_idle=3.0, install_signal_handlers=False,
                                  create_topics=False)
    first = list(window_dicts(300, devices=100, device_prefix="stuck-a", seed=21))
    send_json(kafka_producer, ingest_env.affect_topic, first)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("stats", worker.run()))
    thread.start()
    deadline = time.monotonic() + 60
    while not worker.consumer or not worker.consumer.assignment():
        assert time.monotonic() < deadline, "never assigned"
        time.sleep(0.2)
    stuck = worker.consumer
    stuck.unsubscribe()  # the bug's end state: a member with no partitions that does not rejoin by itself
    second = list(window_dicts(300, devices=100, device_prefix="stuck-b", seed=22))
    send_json(kafka_producer, ingest_env.affect_topic, second)
    thread.join(timeout=45)
    assert not thread.is_alive(), "the worker never recovered its partitions"
    assert worker.consumer is not stuck, "the watchdog did not replace the consumer"
    n = ingest_env.query("select count(*), count(distinct (device_id, window_start)) from affect_windows")[0]
    assert n == (600, 600)
