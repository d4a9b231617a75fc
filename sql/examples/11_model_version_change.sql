-- Question: Did the on-device model rollout shift affect scores?
-- How to read: one row per region that changed model version and per version mix (old model,
--   rollout days with mixed versions, new model): mean valence (device-weighted, [-1, 1]) over
--   those days. A jump at the change is an instrument effect, not a change in people: alerts
--   must not fire on it alone.
with

days as (
    select * from affect_region_day where suppression = 0
),

changed as (
    select region_id from days group by region_id having count(distinct model_versions) > 1
),

final as (
    select
        region_id,
        model_versions,
        min(day) as first_day,
        max(day) as last_day,
        count(*) as n_days,
        round(avg(valence_mean), 3) as valence_mean       -- [-1, 1]
    from days
    join changed using (region_id)
    group by region_id, model_versions
)

select * from final order by region_id, first_day;
