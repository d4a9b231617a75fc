-- Question: In which regions did distress rise for 3 weeks in a row just before influenza
--   admissions rose?
-- How to read: one row per region and week in which admissions rose over the previous week
--   after three consecutive weekly rises in distress_share. `admissions_change` is in
--   admissions per week; distress values are shares (0..1). Suppressed affect weeks (NULL) break
--   a streak, so a row here never rests on a small cell. Affect in the demo is simulated
--   (`affect_simulated`), so read this as a method, not evidence.
with

weeks as (
    select
        region_id,
        week_start,
        symptom_count as admissions,                                    -- admissions per week
        distress_share,                                                 -- share, NULL when suppressed
        affect_simulated,
        symptom_count - lag(symptom_count) over w as admissions_change, -- admissions per week
        distress_share - lag(distress_share) over w as distress_change_0,
        lag(distress_share, 1) over w - lag(distress_share, 2) over w as distress_change_1,
        lag(distress_share, 2) over w - lag(distress_share, 3) over w as distress_change_2
    from fused_region_week
    where syndrome = 'flu_admissions'
    window w as (partition by region_id order by week_start)
),

final as (
    select region_id, week_start, admissions, admissions_change, distress_share, affect_simulated
    from weeks
    where admissions_change > 0
      and distress_change_0 > 0 and distress_change_1 > 0 and distress_change_2 > 0
)

select * from final order by region_id, week_start;
