"""A worker started before its broker waits (backoff, clear log line, status) and then ingests; the local
broker formats its storage whatever the generated cluster id (ids may begin with '-')."""
from __future__ import annotations

import json
import subprocess
import sys
import pytest

from affectwatch.ports import wait_until
from affectwatch.processes import stop_child
from tests.test_validate import good_window

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def test_storage_format_accepts_a_cluster_id_starting_with_a_dash(tmp_path, monkeypatch):
    from ingest import broker as broker_mod

    b = broker_mod.LocalBroker(tmp_path / "kafka")
    monkeypatch.setattr(broker_mod, "_cluster_id", lambda: "-Z0nsj2tQjKTQ3dGAfV8Aw")
    b._format_storage(b._write_config())
    meta = (b.log_dir / "meta.properties").read_text()
    assert "cluster.id=-Z0nsj2tQjKTQ3dGAfV8Aw" in meta


def test_worker_started_before_the_broker_waits_then_ingests(tmp_path):
    from affectwatch.settings import Settings
    from affectwatch.warehouse import connect, migrate
    from ingest.broker import LocalBroker, create_topics, free_port
    from kafka import KafkaProducer

    port = free_port()
    data = tmp_path / "var"
    settings = Settings(data_dir=data, kafka={"bootstrap_servers": f"127.0.0.1:{port}", "affect_topic": "aw-affect",
                                              "symptom_topic": "aw-symptoms", "group_id": "wait-test"})
    migrate(settings=settings)
    env = {**__import__("os").environ, "AFFECTWATCH_DATA_DIR": str(data),
           "AFFECTWATCH_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "AFFECTWATCH_KAFKA__AFFECT_TOPIC": "aw-affect",
           "AFFECTWATCH_KAFKA__SYMPTOM_TOPIC": "aw-symptoms", "AFFECTWATCH_KAFKA__GROUP_ID": "wait-test",
           "AFFECTWATCH_LOG_FORMAT": "json"}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "affectwatch.cli", "ingest"], env=env, stdout=subprocess.PIPE,
                                  stderr=log)
    broker = LocalBroker(tmp_path / "kafka", port=port, partitions=2)
    try:
        wait_until(lambda: "waiting for the Kafka broker" in log_path.read_text(errors="replace"), 180,
                   "the wait log line")
        assert worker.poll() is None, log_path.read_text()[-2000:]
        assert "Traceback" not in log_path.read_text(errors="replace")
        snaps = list((data / "ingest" / "workers").glob("wait-test.*.json"))
        assert snaps and json.loads(snaps[0].read_text())["state"] == "waiting_for_broker"

        broker.start(timeout=180)
        create_topics(broker.bootstrap, ["aw-affect", "aw-symptoms"], 2)
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        try:
            for i in range(30):
                p.send("aw-affect", key=b"06", value=json.dumps(good_window(device_id=f"waiter-{i:05d}")).encode())
            p.flush(timeout=60)
        finally:
            p.close(timeout=10)

        def landed() -> bool:
            con = connect(settings, read_only=True)
            try:
                return con.execute("select count(*) from affect_windows").fetchone()[0] == 30
            finally:
                con.close()

        wait_until(landed, 240, "the windows sent once the broker was up")
        assert worker.poll() is None
    finally:
        stop_child(worker, grace_s=60)
        broker.stop()
    assert worker.returncode == 0, log_path.read_text(errors="replace")[-2000:]
