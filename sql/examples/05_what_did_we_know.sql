-- Question: What admission counts did we know on 2023-06-30, compared with today's values?
-- How to read: one row per region for the week ending 2023-06-24. known_then is the latest
--   revision reported by 2023-06-30 (symptoms_known_at uses report times); known_now is the
--   current value. For the state of the whole warehouse at an earlier moment (including
--   forecasts and alerts), attach a snapshot instead: affectwatch sql --snapshot N, or --as-of.
select
    now_.region_id,
    then_.count as known_then,                    -- admissions as known on 2023-06-30
    now_.count as known_now,                      -- admissions, latest revision
    now_.count - then_.count as revised_by        -- admissions
from symptoms_latest as now_
left join symptoms_known_at(timestamptz '2023-06-30 00:00:00+00') as then_
    using (region_id, syndrome, period_start, period_end)
where now_.syndrome = 'flu_admissions' and now_.period_end = date '2023-06-24'
order by now_.region_id;
