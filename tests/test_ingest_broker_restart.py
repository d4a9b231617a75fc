"""Broker restart while the worker consumes: the worker reconnects, rejoins its group and loses nothing.

The second half of the windows is produced only after the restart, so the test passes only if the
worker (which must not exit while the broker is down) reconnects and fetches again."""
from __future__ import annotations

import time

import pytest

from ingest.bench import window_dicts
from tests.fixtures.kafka import send_json

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

HALF = 5_000


def test_worker_survives_broker_restart(ingest_env, kafka_broker):
    from kafka import KafkaProducer

    windows = list(window_dicts(2 * HALF, devices=300, device_prefix="restart", seed=5))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", linger_ms=5)
    send_json(producer, ingest_env.affect_topic, windows[:HALF])
    producer.close()

    proc = ingest_env.start("--until-idle", "4", "--max-batch", "300")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, ingest_env.log_tail(proc)
        if ingest_env.query("select count(*) from affect_windows")[0][0] > 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no progress before the restart: {ingest_env.log_tail(proc)}")

    kafka_broker.stop()
    time.sleep(3)  # the worker keeps polling a dead broker (and commits what it already fetched)
    assert proc.poll() is None, "worker died while the broker was down"
    kafka_broker.restart()  # same port, same log dir
    assert proc.poll() is None, "worker died while the broker was restarting"

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", linger_ms=5)
    send_json(producer, ingest_env.affect_topic, windows[HALF:])
    producer.close()

    proc.wait(timeout=240)
    assert proc.returncode == 0, ingest_env.log_tail(proc)
    total, distinct = ingest_env.query(
        "select count(*), count(distinct (device_id, window_start)) from affect_windows")[0]
    assert total == distinct == 2 * HALF
    assert ingest_env.query("select sum(n_messages) from ingest_batches")[0][0] == 2 * HALF
