-- Question: Show California's weekly panel: admissions, ILI % and affect side by side.
-- How to read: one row per week. Admissions are counts per week, ili_percent is the share of
--   outpatient visits for ILI in %, distress_share is the device-weighted share (0..1, NULL
--   when suppressed). affect_simulated = true means the affect came from simulated devices.
select
    week_start,
    max(symptom_count) filter (where syndrome = 'flu_admissions') as admissions,     -- per week
    round(max(symptom_percent) filter (where syndrome = 'ili'), 2) as ili_percent,   -- %
    round(any_value(distress_share), 3) as distress_share,                           -- share
    any_value(affect_suppression) as affect_suppression,
    bool_or(affect_simulated) as affect_simulated
from fused_region_week
where region_id = '06' and week_start >= date '2023-03-01'
group by week_start
order by week_start;
