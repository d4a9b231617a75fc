-- affect_region_day: affect per region and UTC day, device-weighted, small cells suppressed.
-- Grain: one row per region and day, for every day between a region's first and last window
-- (days without windows carry suppression = 3, no data). Each device counts once: a device's
-- day mean is weighted by its scored observations, then devices are averaged with equal weight.
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
        day,
        device_id,
        n_windows,
        n_observations,
        n_abstained,
        n_scored,
        model_versions,
        simulated,
        valence_x_scored / nullif(n_scored, 0) as valence_mean,          -- [-1, 1]
        arousal_x_scored / nullif(n_scored, 0) as arousal_mean,          -- [-1, 1]
        distressed_scored / nullif(n_scored, 0) as distress_share,       -- [0, 1]
        confidence_x_scored / nullif(n_scored, 0) as confidence_mean,    -- [0, 1]
        pose_stability_sum / nullif(pose_stability_n, 0) as pose_stability, -- [0, 1]
        lighting_sum / nullif(lighting_n, 0) as lighting,                -- [0, 1]
        snr_db_sum / nullif(snr_db_n, 0) as snr_db                      -- dB
    from device_day
),

regions as (
    select
        region_id,
        day,
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
        bool_or(simulated) as simulated
    from devices
    group by region_id, day
),

calendar as (
    select region_id, cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day
    from regions
    group by region_id
),

coded as (
    select
        calendar.region_id,
        calendar.day,
        coalesce(regions.n_devices, 0) as n_devices,
        coalesce(regions.n_windows, 0) as n_windows,
        coalesce(regions.n_observations, 0) as n_observations,
        coalesce(regions.n_abstained, 0) as n_abstained,
        coalesce(regions.n_scored, 0) as n_scored,
        regions.* exclude (region_id, day, n_devices, n_windows, n_observations, n_abstained, n_scored),
        case
            when coalesce(regions.n_observations, 0) = 0 then 3      -- no data
            when regions.n_scored < params.k_min then 1              -- fewer than k_min observations
            when regions.n_devices < params.min_devices then 2       -- fewer than min_devices devices
            else 0
        end as suppression,
        params.min_devices as min_devices_required
    from calendar
    cross join params
    left join regions using (region_id, day)
),

final as (
    select
        region_id,
        day,                                                           -- UTC day
        n_devices,                                                     -- distinct devices (count)
        n_windows,                                                     -- windows (count)
        n_observations,                                                -- observations (count)
        n_abstained,                                                   -- abstained observations (count)
        n_scored,                                                      -- scored observations (count)
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
