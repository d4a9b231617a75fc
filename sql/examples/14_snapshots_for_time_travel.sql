-- Question: Which warehouse snapshots exist, so that I can look at the data as it was then?
-- How to read: one row per DuckLake snapshot (every committed write). Pick a snapshot_id or a
--   time and re-run any question on that state of the warehouse:
--     affectwatch sql --snapshot 6 --query "select count(*) from symptoms_as_reported"
--     affectwatch sql --as-of "<a snapshot_time below>" --file sql/examples/04_latest_admissions_vs_first_report.sql
--   Snapshot times are when the data was written (wall clock), not the dates inside the data.
--   `changes` names what the snapshot wrote (tables_inserted_into lists table ids).
select snapshot_id, snapshot_time, changes
from ducklake_snapshots('wh')
order by snapshot_id desc;
