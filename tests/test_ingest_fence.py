"""A batch committed late (its worker waited for the catalog and lost the partition meanwhile) writes
only the records the partition's new owner has not committed yet: never a record twice."""
from __future__ import annotations

import msgspec

from ingest.bench import window_dicts
from ingest.sink import PendingBatch, write_batch
from ingest.validate import Validator

TOPIC, GROUP = "aw", "fence-group"


def _batch(settings, raws: list[bytes], first: int) -> PendingBatch:
    v, b = Validator(settings), PendingBatch()
    for k, raw in enumerate(raws):
        b.affect.append(v.affect(raw))
        b.a_topic.append(TOPIC)
        b.a_partition.append(0)
        b.a_offset.append(first + k)
        b.a_ts.append(-1)
        b.a_sim.append(True)
    b.n_messages = len(raws)
    b.first_offsets[(TOPIC, 0)] = first
    b.next_offsets[(TOPIC, 0)] = first + len(raws)
    return b


def test_late_batch_writes_only_what_the_new_owner_has_not(warehouse, settings):
    enc = msgspec.json.Encoder()
    raws = [enc.encode(w) for w in window_dicts(200, devices=50, device_prefix="fence", seed=2)]
    stale = _batch(settings, raws[:100], 0)           # worker A read offsets 0-99, then waited
    write_batch(warehouse, _batch(settings, raws[:60], 0), GROUP)  # new owner B commits 0-59 first
    r = write_batch(warehouse, stale, GROUP)           # A's late commit: only 60-99 are new
    assert (r.n_messages, r.n_affect, r.n_duplicates) == (40, 40, 0)
    # B had read 60-199 before A's commit landed: it writes 100-199
    assert write_batch(warehouse, _batch(settings, raws[60:200], 60), GROUP).n_affect == 100
    late = write_batch(warehouse, _batch(settings, raws[:100], 0), GROUP)  # fully superseded: nothing written
    assert (late.n_messages, late.n_affect) == (0, 0)

    total, distinct = warehouse.execute(
        "select count(*), count(distinct (device_id, window_start)) from affect_windows").fetchone()
    assert total == distinct == 200
    assert warehouse.execute("select count(*) from affect_windows group by kafka_offset having count(*) > 1").fetchall() == []
    assert warehouse.execute("select max(next_offset) from ingest_offsets").fetchone()[0] == 200
    assert warehouse.execute("select sum(n_messages) from ingest_batches").fetchone()[0] == 200
