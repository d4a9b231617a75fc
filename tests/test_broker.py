"""`affectwatch broker start|status|stop` and the LocalBroker API on a real Kafka broker."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ingest.broker import LocalBroker, free_port, pid_alive


def _cli(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "affectwatch.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_missing_java_is_one_clear_line(tmp_path):
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(tmp_path), "PATH": str(tmp_path / "empty-bin")}
    res = _cli("broker", "start", env=env)
    assert res.returncode == 1
    err = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert err == ["error: `java` not found on PATH: install a JDK >= 17 (e.g. apt-get install openjdk-17-jre-headless)"]


@pytest.mark.slow
@pytest.mark.kafka
def test_cli_start_status_stop(tmp_path):
    port = free_port()
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(tmp_path / "var"),
           "AFFECTWATCH_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
           "AFFECTWATCH_KAFKA__PARTITIONS": "2"}
    try:
        res = _cli("broker", "start", env=env)
        assert res.returncode == 0, res.stderr[-1500:]
        assert res.stdout.strip().splitlines()[-1] == f"127.0.0.1:{port}"
        assert (tmp_path / "var" / "kafka" / "server.properties").exists()
        pid = int((tmp_path / "var" / "kafka" / "broker.pid").read_text())

        status = _cli("broker", "status", env=env)
        assert status.returncode == 0 and status.stdout.startswith(f"running 127.0.0.1:{port} pid {pid}")

        # the two topics exist with the configured partition count
        from kafka import KafkaConsumer

        c = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}")
        try:
            assert c.partitions_for_topic("affect.windows.v1") == {0, 1}
            assert c.partitions_for_topic("symptoms.reports.v1") == {0, 1}
        finally:
            c.close()
    finally:
        stop = _cli("broker", "stop", env=env)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    status = _cli("broker", "status", env=env)
    assert status.returncode == 3 and status.stdout.startswith("stopped")
    assert not pid_alive(pid)  # gone (or a zombie awaiting its reaper)


@pytest.mark.slow
@pytest.mark.kafka
def test_restart_keeps_port_and_data(kafka_broker, topic_factory, kafka_producer):
    """A second LocalBroker object on the same dir finds the running broker (pid file) and its port."""
    from kafka import KafkaConsumer

    topic = topic_factory("keep", partitions=1)
    kafka_producer.send(topic, b"before restart").get(timeout=30)
    same = LocalBroker(kafka_broker.dir)
    assert same.running and same.bootstrap == kafka_broker.bootstrap
    kafka_broker.restart()
    assert kafka_broker.running and kafka_broker.bootstrap == same.bootstrap
    c = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=10_000)
    try:
        assert [m.value for m in c] == [b"before restart"]
    finally:
        c.close()
