-- Question: Which recent admission counts were revised after they were first reported, and by
--   how much?
-- How to read: one row per revised region-week. first_count is what the first report said,
--   count is the current value; total_revision > 0 means the first report was too low (typical
--   for provisional hospital data). Recent weeks with no revision yet may still change.
select
    region_id,
    period_start as week_start,
    first_count,                                  -- admissions, first report
    count,                                        -- admissions, latest revision
    total_revision,                               -- admissions
    n_revisions,
    first_reported_at,
    reported_at as last_reported_at
from symptoms_latest
where syndrome = 'flu_admissions' and revised
order by period_start desc, region_id;
