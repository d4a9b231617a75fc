-- Question: Which analyst-store publications exist, so that I can look at the data as analysts saw it then?
-- How to read: one row per publication (every refresh that changed something). Pick a publication_id
--   or a time and re-run any question on that publication:
--     affectwatch sql --snapshot 1 --query "select count(*) from symptoms_as_reported"
--     affectwatch sql --as-of "<a published_at below>" --file sql/examples/04_latest_admissions_vs_first_report.sql
--   published_at is when the refresh ran (wall clock), not the dates inside the data; affect cells
--   appear only once their period closed (periods_closed_before), and cells_held counts published
--   cells kept unchanged because a late change was below the privacy minimums.
select publication_id, published_at, warehouse_snapshot, periods_closed_before, cells_held, cells_not_yet_published
from publications
order by publication_id desc;
