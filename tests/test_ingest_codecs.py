"""Every Kafka compression codec, from two clients (kcat/librdkafka and kafka-python), through the real
worker; poison messages between them; and a batch the worker cannot read parks only its partition."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from affectwatch.ports import wait_until
from tests.fixtures.kafka import send_raw
from tests.test_validate import good_window

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

CODECS = ("gzip", "snappy", "lz4", "zstd")
T0 = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)


def _window(tag: str, i: int) -> bytes:
    start = T0 + timedelta(minutes=15 * (i % 40))
    return json.dumps(good_window(device_id=f"{tag}-{i // 40:06d}", region_id=("06", "36", "48", "12")[i % 4],
                                  window_start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  window_end=(start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ"))).encode()


def _kcat(bootstrap: str, topic: str, codec: str, payloads: list[bytes]) -> None:
    """Produce with kcat (librdkafka): keyed lines, compressed batches."""
    lines = b"".join(b"06|" + p + b"\n" for p in payloads)
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-z", codec, "-K", "|", "-X", "linger.ms=50"],
                   input=lines, check=True, timeout=120, capture_output=True)


def _kafka_python(bootstrap: str, topic: str, codec: str | None, payloads: list[bytes]) -> None:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec, linger_ms=20)
    try:
        send_raw(p, topic, payloads)
    finally:
        p.close(timeout=10)


@pytest.mark.skipif(not shutil.which("kcat"), reason="kcat not installed (apt-get install -y kcat)")
def test_every_codec_from_both_clients_lands_exactly_once(ingest_env, kafka_broker):
    expected = set()
    n = 0
    # the order: a zstd/snappy batch first, then gzip and uncompressed records on the same topic
    for codec in ("zstd", "snappy", "gzip", "lz4"):
        for client in ("kcat", "kafka-python"):
            payloads = [_window(f"{codec}-{client}", i) for i in range(60)]
            (_kcat if client == "kcat" else _kafka_python)(kafka_broker.bootstrap, ingest_env.affect_topic, codec, payloads)
            expected |= {(json.loads(p)["device_id"], json.loads(p)["window_start"]) for p in payloads}
            n += len(payloads)
    plain = [_window("plain", i) for i in range(40)]
    _kafka_python(kafka_broker.bootstrap, ingest_env.affect_topic, None, plain)
    expected |= {(json.loads(p)["device_id"], json.loads(p)["window_start"]) for p in plain}
    n += len(plain)

    stats = ingest_env.run()
    assert stats["messages"] == n and stats["dead_letters"] == 0, stats
    rows = ingest_env.query("select device_id, strftime(window_start at time zone 'UTC', '%Y-%m-%dT%H:%M:%SZ') "
                            "from affect_windows")
    assert len(rows) == len(set(rows)) == n
    assert set(rows) == expected


@pytest.mark.skipif(not shutil.which("kcat"), reason="kcat not installed (apt-get install -y kcat)")
def test_poison_messages_in_compressed_batches_become_dead_letters(ingest_env, kafka_broker, kafka_producer):
    """The issue's poison message (2,000 bytes of [[[[...) and invalid UTF-8, then 200 valid windows."""
    poison = {b"[" * 1000 + b"]" * 1000: "too_deeply_nested", b"[" * 2000: "too_deeply_nested",
              b'{"device_id": "caf\xe9"}': "invalid_utf8",
              json.dumps(good_window(region_id="06\n")).encode(): "bad_region_id",
              json.dumps(good_window(region_id="٠٦"), ensure_ascii=False).encode(): "bad_region_id",
              json.dumps(good_window(device_id="dev-0001abcd\n")).encode(): "value_out_of_range",
              json.dumps(good_window(n_observations=3))[:-1].encode() + b', "n_observations": 40}': "duplicate_field"}
    send_raw(kafka_producer, ingest_env.affect_topic, list(poison))
    valid = [_window("after", i) for i in range(200)]
    _kcat(kafka_broker.bootstrap, ingest_env.affect_topic, "zstd", valid[:100])
    _kafka_python(kafka_broker.bootstrap, ingest_env.affect_topic, "snappy", valid[100:])

    stats = ingest_env.run()
    assert stats["messages"] == len(poison) + 200
    assert ingest_env.query("select count(*), count(distinct device_id || window_start) from affect_windows")[0] == (200, 200)
    dead = {bytes(raw): reason for raw, reason in ingest_env.query("select raw, reason from dead_letters")}
    assert dead == poison


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def test_unreadable_batch_parks_only_its_partition(ingest_env, kafka_broker, monkeypatch):
    """A batch this client cannot decompress (a codec it lacks — as a future codec would be): the worker
    logs it, exposes the partition and offset in /metrics and `ingest status`, and the other partitions flow."""
    import kafka.codec

    from ingest.consume import IngestWorker

    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", linger_ms=20)
    try:  # 20 readable windows to partition 0, then one zstd batch to partition 1, then more readable ones
        plain = [p.send(ingest_env.affect_topic, value=_window("ok", i), partition=0 if i < 20 else 2) for i in range(40)]
        p.flush()
    finally:
        p.close()
    z = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", compression_type="zstd", linger_ms=20)
    try:
        for i in range(10):
            z.send(ingest_env.affect_topic, value=_window("zstd", i), partition=1)
        z.flush()
    finally:
        z.close()
    for f in plain:
        f.get(timeout=30)

    monkeypatch.setattr(kafka.codec, "has_zstd", lambda: False)  # this process "lacks" the zstd codec
    worker = IngestWorker(ingest_env.settings, install_signal_handlers=False, metrics_port=0, max_seconds=0.5)
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    try:
        wait_until(lambda: worker.metrics_server is not None, 120, "the metrics endpoint")
        port = worker.metrics_server.server_port
        # the readable partitions land while partition 1 is stuck at offset 0
        wait_until(lambda: ingest_env.query("select count(*) from affect_windows")[0][0] == 40, 120,
                   "the readable windows")
        rows_line = f'affectwatch_ingest_rows_total{{group="{ingest_env.group}",table="affect_windows"}} 40'

        def stuck_metrics():  # the worker publishes its counters just after the commit: wait for both
            m = _metrics(port)
            return m if "stuck_partition_offset{" in m and rows_line in m else None

        text = wait_until(stuck_metrics, 120, "the stuck metric and the 40 rows in /metrics")
        assert (f'affectwatch_ingest_stuck_partition_offset{{group="{ingest_env.group}",topic="{ingest_env.affect_topic}",'
                f'partition="1"}} 0') in text
        assert "affectwatch_ingest_stuck_partitions" in text and "affectwatch_ingest_consumer_lag{" in text
        assert rows_line in text

        out = subprocess.run([*_cli(), "ingest", "status"], env=ingest_env.env, capture_output=True, text=True,
                             timeout=120, check=True).stdout
        st = json.loads(out.strip().splitlines()[-1])
        assert [(s["topic"], s["partition"], s["offset"]) for s in st["stuck_partitions"]] == [(ingest_env.affect_topic, 1, 0)]
        assert "zstd" in st["stuck_partitions"][0]["error"]
        assert "STUCK" in out
        lag = {(q["topic"], q["partition"]): q["lag"] for q in st["partitions"]}
        assert lag[(ingest_env.affect_topic, 1)] == 10 and lag[(ingest_env.affect_topic, 0)] == 0
    finally:
        worker.stop()
        t.join(timeout=60)
    assert not t.is_alive()
    assert ingest_env.query("select count(*) from dead_letters")[0][0] == 0  # not dead-lettered: still readable later


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "affectwatch.cli"]
