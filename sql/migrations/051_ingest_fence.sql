-- 051_ingest_fence: one row that every ingest batch deletes and re-inserts in its own transaction.
-- DuckLake lets concurrent appends to one table commit without a conflict (snapshot isolation), so
-- two group members that hold the same partitions for a moment (a rebalance one of them has not
-- noticed yet) could both read the stored offsets, both miss the other's records, and both append
-- them. A delete on this table makes concurrent batch commits conflict: the later one is rolled back
-- and retried, and its retry reads the offsets the first one stored (ingest/sink.py `_fence`).
create table if not exists ingest_fence (
    consumer_group varchar not null,       -- the group of the last batch committed
    committed_at timestamptz not null
);
insert into ingest_fence select '*', now() where not exists (select 1 from ingest_fence);
