"""End to end on a real broker and warehouse: simulate -> Kafka -> `affectwatch ingest` -> warehouse."""
from __future__ import annotations

from datetime import date

import pytest

from ingest.simulate import load_series, simulate_symptom_reports, simulate_windows
from tests.fixtures.kafka import send_json

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


def test_simulated_windows_and_reports_land_exactly_once(ingest_env, kafka_producer):
    series = load_series()
    windows = list(simulate_windows(series, "lead", start=date(2023, 9, 1), end=date(2023, 9, 3),
                                    regions=["06", "36"], devices_per_region=8, window_minutes=60,
                                    settings=ingest_env.settings))
    reports = list(simulate_symptom_reports(series, regions=["06", "36"], start=date(2023, 8, 1),
                                            end=date(2023, 9, 30), revise_share=1.0))
    assert len(windows) > 200 and len(reports) >= 8
    send_json(kafka_producer, ingest_env.affect_topic, windows, simulated=True)
    send_json(kafka_producer, ingest_env.symptom_topic, reports, simulated=True)

    stats = ingest_env.run()
    assert stats["messages"] == len(windows) + len(reports)
    assert stats["dead_letters"] == 0 and stats["duplicates"] == 0

    rows = ingest_env.query("select device_id, window_start, region_id, valence_mean, distress_share, "
                            "n_observations, model_version, simulated from affect_windows")
    got = {(r[0], r[1]): r for r in rows}
    assert len(rows) == len(got) == len(windows), "lost or duplicated windows"
    for w in windows:
        r = got[(w["device_id"], w["window_start"])]
        assert r[2:7] == (w["region_id"], w["valence_mean"], w["distress_share"], w["n_observations"],
                          w["model_version"])
        assert r[7] is True  # `aw-simulated` header -> simulated column

    # every revision is kept: two reports per (region, week), with different reported_at
    sym = ingest_env.query("select region_id, period_start, count(*), count(distinct reported_at), "
                           "min(origin) from symptom_reports group by all")
    assert sum(r[2] for r in sym) == len(reports)
    assert all(r[2] == 2 and r[3] == 2 for r in sym)
    assert all(r[4] == f"kafka:{ingest_env.symptom_topic}" for r in sym)
    assert ingest_env.query("select count(*) from dead_letters")[0][0] == 0

    # the next offsets stored in the warehouse are the log end offsets of every partition
    stored = dict(((t, p), o) for t, p, o in ingest_env.query(
        "select topic, kafka_partition, max(next_offset) from ingest_offsets group by all"))
    ends = {k: v for k, v in ingest_env.end_offsets().items() if v > 0}
    assert stored == ends
    batches = ingest_env.query("select sum(n_messages), sum(n_affect), sum(n_symptoms) from ingest_batches")[0]
    assert batches == (len(windows) + len(reports), len(windows), len(reports))

    # a second run resumes from the warehouse offsets: nothing is read or written twice
    again = ingest_env.run()
    assert again["messages"] == 0
    assert ingest_env.query("select count(*) from affect_windows")[0][0] == len(windows)


def test_sigterm_commits_the_batch_and_exits_zero(ingest_env, kafka_producer):
    import signal
    import time

    from ingest.bench import window_dicts

    n = 8_000
    send_json(kafka_producer, ingest_env.affect_topic, window_dicts(n, devices=200, device_prefix="term"))
    proc = ingest_env.start("--max-batch", "500")
    deadline = time.monotonic() + 90
    while ingest_env.query("select count(*) from affect_windows")[0][0] == 0:
        assert proc.poll() is None and time.monotonic() < deadline, ingest_env.log_tail(proc)
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0, ingest_env.log_tail(proc)
    assert "ingest worker stopped" in ingest_env.log_tail(proc)
    rows, consumed = ingest_env.query("select (select count(*) from affect_windows), "
                                      "(select sum(n_messages) from ingest_batches)")[0]
    assert rows == consumed  # everything it read was committed, with its offsets
    ingest_env.run()
    assert ingest_env.query("select count(*), count(distinct (device_id, window_start)) from affect_windows")[0] == (n, n)
