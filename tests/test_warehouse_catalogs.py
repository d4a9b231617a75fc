"""The warehouse on both catalogs (SQLite file; PostgreSQL in a real throwaway cluster), driven as an
operator does: `affectwatch warehouse migrate`, the ingest sink's batch transactions from several
processes at once, `affectwatch warehouse compact`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from affectwatch.settings import Settings

pytestmark = pytest.mark.slow

WRITER = r"""
import sys
from pathlib import Path
import msgspec
from affectwatch.settings import Settings
from affectwatch.warehouse import session
from ingest.bench import window_dicts
from ingest.sink import PendingBatch, write_batch
from ingest.validate import Validator

prefix, batches, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
group = sys.argv[4] if len(sys.argv) > 4 else f"group-{prefix}"
s = Settings()  # data dir and catalog from the environment, like every AffectWatch process
v, enc = Validator(s), msgspec.json.Encoder()
windows = [enc.encode(w) for w in window_dicts(batches * size, devices=size, device_prefix=prefix, seed=len(prefix))]
with session(s) as con:
    for i in range(batches):
        b = PendingBatch()
        for k, raw in enumerate(windows[i * size:(i + 1) * size]):
            b.affect.append(v.affect(raw))
            b.a_topic.append(prefix); b.a_partition.append(0); b.a_offset.append(i * size + k)
            b.a_ts.append(-1); b.a_sim.append(True)
        b.n_messages = size
        b.first_offsets[(prefix, 0)] = i * size
        b.next_offsets[(prefix, 0)] = (i + 1) * size
        write_batch(con, b, group)
print("done")
"""


def _env(settings: Settings, catalog: str | None) -> dict:
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(settings.data_dir), "AFFECTWATCH_LOG_FORMAT": "json",
           "AFFECTWATCH_LOG_LEVEL": "DEBUG"}
    if catalog:
        env["AFFECTWATCH_WAREHOUSE__CATALOG"] = catalog
    return env


def _cli(env: dict, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "affectwatch.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _writers(env: dict, prefixes: list[str], batches: int, size: int, tmp_path: Path,
             group: str | None = None) -> list[str]:
    """One WRITER process per prefix, all at once (``group``: one consumer group for all of them)."""
    extra = [group] if group else []
    logs = [tmp_path / f"writer-{i}-{p}.log" for i, p in enumerate(prefixes)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, p, str(batches), str(size), *extra], env=env,
                              stdout=subprocess.PIPE, stderr=open(log, "wb")) for p, log in zip(prefixes, logs)]
    for p, log in zip(procs, logs):
        out, _ = p.communicate(timeout=900)
        assert p.returncode == 0, log.read_text(errors="replace")[-3000:]
        assert out.decode().strip() == "done"
    return [log.read_text(errors="replace") for log in logs]


def _query(settings: Settings, sql: str) -> list[tuple]:
    from affectwatch.warehouse import session

    with session(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_writers_in_parallel_then_compaction(catalog, tmp_path, request):
    """Three processes commit 12 batches each at the same time: each batch lands once (contention is
    waited out, never raised); then `warehouse compact` merges the small files without changing a row."""
    s = Settings(data_dir=tmp_path / "var", warehouse={"catalog": catalog} if catalog else {})
    env = _env(s, catalog)
    assert "migration" in _cli(env, "warehouse", "migrate")

    batches, size, prefixes = 12, 100, ["alpha", "bravo", "charlie"]
    logs = _writers(env, prefixes, batches, size, tmp_path)
    waits = sum(line.count('"waiting_for_catalog"') for line in logs)
    print(f"catalog={'postgres' if catalog else 'sqlite'}: {waits} contention retries among the writers")

    n = batches * size * len(prefixes)
    assert _query(s, "select count(*), count(distinct (device_id, window_start)) from affect_windows")[0] == (n, n)
    assert _query(s, "select count(*), sum(n_messages) from ingest_batches")[0] == (batches * len(prefixes), n)
    assert sorted(_query(s, "select consumer_group, max(next_offset) from ingest_offsets group by all")) == \
        [(f"group-{p}", batches * size) for p in prefixes]

    out = _cli(env, "warehouse", "compact")
    res = json.loads(out.strip().splitlines()[-1])
    assert res["affect_files_before"] >= batches * len(prefixes)
    assert res["affect_files_after"] < res["affect_files_before"]
    assert _query(s, "select count(*), count(distinct (device_id, window_start)) from affect_windows")[0] == (n, n)
    on_disk = list((tmp_path / "var" / "warehouse" / "data").rglob("*.parquet"))
    assert len([f for f in on_disk if "affect_windows" in str(f)]) == res["affect_files_after"]

    if catalog:  # the metadata really is in PostgreSQL: no SQLite file, and psql sees the snapshots
        pg = request.getfixturevalue("postgres_cluster")
        assert not (tmp_path / "var" / "warehouse" / "catalog.sqlite").exists()
        db = catalog.split("dbname=")[1].split()[0]
        snapshots = int(pg.psql(db, "select count(*) from ducklake_snapshot").strip())
        assert snapshots > batches * len(prefixes)
        live = int(pg.psql(db, "select count(*) from ducklake_data_file f join ducklake_table t using (table_id) "
                               "where t.table_name = 'affect_windows' and f.end_snapshot is null "
                               "and t.end_snapshot is null").strip())
        assert live == res["affect_files_after"]


def test_two_members_writing_the_same_records_at_once_store_them_once(catalog, tmp_path):
    """Two members of one group that both hold a partition for a while (a rebalance one of them has not
    noticed) read and commit the same records at the same time. DuckLake commits concurrent appends
    without a conflict, so the fence's offset check alone let both append them (572 duplicates in a
    CI run on PostgreSQL); the fence row (migration 051) makes the later commit conflict and retry."""
    s = Settings(data_dir=tmp_path / "var", warehouse={"catalog": catalog} if catalog else {})
    env = _env(s, catalog)
    _cli(env, "warehouse", "migrate")
    batches, size = 15, 60
    _writers(env, ["same", "same"], batches, size, tmp_path, "one-group")
    n = batches * size
    assert _query(s, "select count(*), count(distinct (device_id, window_start)) from affect_windows")[0] == (n, n)
    assert _query(s, "select sum(n_messages) from ingest_batches")[0][0] == n
