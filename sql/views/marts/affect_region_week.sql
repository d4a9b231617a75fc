-- affect_region_week: affect per region and MMWR week (Sunday..Saturday, UTC days),
-- device-weighted, small cells suppressed. Grain: one row per region and week between a
-- region's first and last window (weeks without windows carry suppression = 3, no data).
-- A device's week mean is weighted by its scored observations; devices then count equally.
with

device_day as (
    select * from analyst.staging.int_affect_device_day
),

params as (
    select k_min, min_devices from analyst.staging.privacy_params
),

devices as (
    select
        region_id,
        cast(day - cast(dayofweek(day) as integer) as date) as week_start, -- Sunday
        device_id,
        cast(sum(n_windows) as bigint) as n_windows,
        cast(sum(n_observations) as bigint) as n_observations,
        cast(sum(n_abstained) as bigint) as n_abstained,
        cast(sum(n_scored) as bigint) as n_scored,
        sum(valence_x_scored) / nullif(sum(n_scored), 0) as valence_mean,        -- [-1, 1]
        sum(arousal_x_scored) / nullif(sum(n_scored), 0) as arousal_mean,        -- [-1, 1]
        sum(distressed_scored) / nullif(sum(n_scored), 0) as distress_share,     -- [0, 1]
        sum(confidence_x_scored) / nullif(sum(n_scored), 0) as confidence_mean,  -- [0, 1]
        sum(pose_stability_sum) / nullif(sum(pose_stability_n), 0) as pose_stability, -- [0, 1]
        sum(lighting_sum) / nullif(sum(lighting_n), 0) as lighting,              -- [0, 1]
        sum(snr_db_sum) / nullif(sum(snr_db_n), 0) as snr_db,                    -- dB
        list_distinct(flatten(list(model_versions))) as model_versions,
        bool_or(simulated) as simulated,
        count(distinct day) as n_days
    from device_day
    group by all
),

regions as (
    select
        region_id,
        week_start,
        count(distinct device_id) as n_devices,
        cast(sum(n_windows) as bigint) as n_windows,
        cast(sum(n_observations) as bigint) as n_observations,
        cast(sum(n_abstained) as bigint) as n_abstained,
        cast(sum(n_scored) as bigint) as n_scored,
        avg(valence_mean) as valence_mean,
        avg(arousal_mean) as arousal_mean,
        avg(distress_share) as distress_share,
        avg(confidence_mean) as confidence_mean,
        avg(pose_stability) as pose_stability,
        avg(lighting) as lighting,
        avg(snr_db) as snr_db,
        array_to_string(list_sort(list_distinct(flatten(list(model_versions)))), ',') as model_versions,
        bool_or(simulated) as simulated,
        max(n_days) as n_days
    from devices
    group by region_id, week_start
),

calendar as (
    select region_id, cast(unnest(generate_series(min(week_start), max(week_start), interval 7 day)) as date) as week_start
    from regions
    group by region_id
),

coded as (
    select
        calendar.region_id,
        calendar.week_start,
        coalesce(regions.n_devices, 0) as n_devices,
        coalesce(regions.n_windows, 0) as n_windows,
        coalesce(regions.n_observations, 0) as n_observations,
        coalesce(regions.n_abstained, 0) as n_abstained,
        coalesce(regions.n_scored, 0) as n_scored,
        coalesce(regions.n_days, 0) as n_days,
        regions.* exclude (region_id, week_start, n_devices, n_windows, n_observations, n_abstained, n_scored, n_days),
        case
            when coalesce(regions.n_observations, 0) = 0 then 3      -- no data
            when regions.n_scored < params.k_min then 1              -- fewer than k_min observations
            when regions.n_devices < params.min_devices then 2       -- fewer than min_devices devices
            else 0
        end as suppression,
        params.min_devices as min_devices_required
    from calendar
    cross join params
    left join regions using (region_id, week_start)
),

final as (
    select
        region_id,
        week_start,                                                    -- date, Sunday
        cast(week_start + 6 as date) as week_end,                      -- date, Saturday
        n_devices,                                                     -- distinct devices (count)
        n_windows,                                                     -- windows (count)
        n_observations,                                                -- observations (count)
        n_abstained,                                                   -- abstained observations (count)
        n_scored,                                                      -- scored observations (count)
        n_days,                                                        -- days with windows, max over devices (count)
        case when suppression = 0 then n_abstained / n_observations end as abstain_share, -- [0, 1]
        case when suppression = 0 then valence_mean end as valence_mean,       -- [-1, 1]
        case when suppression = 0 then arousal_mean end as arousal_mean,       -- [-1, 1]
        case when suppression = 0 then distress_share end as distress_share,   -- [0, 1]
        case when suppression = 0 then confidence_mean end as confidence_mean, -- [0, 1]
        case when suppression = 0 then pose_stability end as pose_stability,   -- [0, 1]
        case when suppression = 0 then lighting end as lighting,               -- [0, 1]
        case when suppression = 0 then snr_db end as snr_db,                   -- dB
        model_versions,                                                -- comma-separated model ids
        coalesce(strpos(model_versions, ',') > 0, false) as model_version_mixed, -- more than one model
        coalesce(simulated, false) as simulated,                       -- built from simulated devices
        suppression,                                                   -- 0 ok, 1 <k_min, 2 <min devices, 3 no data
        case suppression
            when 0 then 'ok'
            when 1 then 'suppressed: fewer than k_min observations'
            when 2 then 'suppressed: fewer than ' || min_devices_required || ' devices'
            else 'no data'
        end as suppression_label
    from coded
)

select * from final
