"""A separate reader process queries the warehouse while the worker writes: no lock errors, no torn reads.

On both catalogs (the reader gets the catalog setting from the environment, as any process would)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ingest.bench import window_dicts
from tests.fixtures.kafka import send_json

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

N = 15_000

READER = r"""
import json, sys, time
from pathlib import Path
from affectwatch.settings import Settings
from affectwatch.warehouse import connect

s = Settings(data_dir=Path(sys.argv[1]))
target, deadline = int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
counts, errors, queries, con = [], [], 0, None
while time.monotonic() < deadline:
    try:
        if con is None or queries % 25 == 0:  # also open fresh connections while the worker commits
            if con is not None:
                con.close()
            con = connect(s, read_only=True)
        # one statement = one snapshot
        n, b = con.execute("select (select count(*) from affect_windows), "
                           "(select coalesce(sum(n_affect), 0) from ingest_batches)").fetchone()
        queries += 1
        counts.append(n)
        if n != b:  # rows and their batch row are committed together: a reader never sees one without the other
            errors.append(f"torn read: {n} rows vs {b} in ingest_batches")
        if n >= target:
            break
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:300])
        con = None
    time.sleep(0.02)
print(json.dumps({"counts": counts, "errors": errors, "queries": queries}))
"""


@pytest.mark.parametrize("ingest_env", ["sqlite", "postgres"], indirect=True)
def test_reader_process_queries_while_worker_writes(ingest_env, kafka_producer):
    send_json(kafka_producer, ingest_env.affect_topic, window_dicts(N, devices=500, device_prefix="reader", seed=9))
    reader = subprocess.Popen([sys.executable, "-c", READER, str(ingest_env.data_dir), str(N), "150"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ingest_env.env)
    stats = ingest_env.run("--max-batch", "500", timeout=180)
    out, err = reader.communicate(timeout=180)
    assert reader.returncode == 0, err.decode()[-2000:]
    res = json.loads(out.decode().strip().splitlines()[-1])
    assert res["errors"] == []
    counts = res["counts"]
    assert counts == sorted(counts), "a reader saw the row count go backwards"
    assert counts[-1] == N == stats["affect_rows"]
    assert len(set(counts)) >= 3, f"the reader did not overlap with the writes: {sorted(set(counts))[:10]}"
