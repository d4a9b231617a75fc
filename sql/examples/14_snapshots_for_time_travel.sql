-- Question: Which warehouse snapshots exist, so that I can look at the data as it was then?
-- How to read: one row per DuckLake snapshot (every committed write). Pick a snapshot_id or a
--   time and re-run any question on that state of the warehouse:
--     affectwatch sql --snapshot 6 --query "select count(*) from symptoms_as_reported"
--     affectwatch sql --as-of "2023-07-01 00:00:00+00" --file sql/examples/04_latest_admissions_vs_first_report.sql
--   `changes` names what the snapshot wrote (tables_inserted_into lists table ids).
select snapshot_id, snapshot_time, changes
from ducklake_snapshots('wh')
order by snapshot_id desc;
