-- data_quality_daily: feed health per region, site type and UTC day: windows, devices, last
-- seen, ingest delay, dead letters, and how often hourly cells would be suppressed.
-- Grain: one row per region, site type and day with windows or dead letters. Dead letters whose
-- payload names no site type are counted under site_type 'unknown'.
with

device_day as (
    select * from analyst.staging.int_affect_device_day
),

windows as (
    select * from analyst.staging.stg_affect_windows
),

dead as (
    select * from analyst.staging.stg_dead_letters
),

params as (
    select k_min, min_devices from analyst.staging.privacy_params
),

feeds as (
    select
        region_id,
        site_type,
        day,
        cast(sum(n_windows) as bigint) as n_windows,
        count(distinct device_id) as n_devices,
        cast(sum(n_observations) as bigint) as n_observations,
        cast(sum(n_abstained) as bigint) as n_abstained,
        max(last_window_end) as last_seen,
        median(ingest_delay_minutes) as ingest_delay_minutes,
        array_to_string(list_sort(list_distinct(flatten(list(model_versions)))), ',') as model_versions,
        bool_or(simulated) as simulated
    from device_day
    group by region_id, site_type, day
),

hourly_cells as (
    select
        region_id, site_type, window_date as day, date_trunc('hour', window_start) as hour,
        count(distinct device_id) as n_devices, sum(n_scored) as n_scored
    from windows
    group by all
),

hourly as (
    select
        region_id, site_type, day,
        count(*) as n_hours,
        count(*) filter (where n_scored < params.k_min or n_devices < params.min_devices) as n_hours_suppressed
    from hourly_cells
    cross join params
    group by all
),

dead_by_day as (
    select
        coalesce(region_id, 'unknown') as region_id,
        coalesce(site_type, 'unknown') as site_type,
        received_date as day,
        count(*) as n_dead_letters,
        count(*) filter (where reason = 'below_k_anonymity') as n_below_k_anonymity
    from dead
    group by all
),

final as (
    select
        region_id,
        site_type,                                                  -- ed | clinic | school | transit | other | unknown
        day,                                                        -- UTC day
        coalesce(feeds.n_windows, 0) as n_windows,                  -- windows (count)
        coalesce(feeds.n_devices, 0) as n_devices,                  -- distinct devices (count)
        coalesce(feeds.n_observations, 0) as n_observations,        -- observations (count)
        feeds.n_abstained / nullif(feeds.n_observations, 0) as abstain_share, -- [0, 1]
        feeds.last_seen,                                            -- timestamptz, latest window_end
        feeds.ingest_delay_minutes,                                 -- median window_end -> ingested, minutes
        feeds.model_versions,                                       -- comma-separated model ids
        coalesce(feeds.simulated, false) as simulated,
        coalesce(hourly.n_hours, 0) as n_hours,                     -- hours with windows (count)
        hourly.n_hours_suppressed / nullif(hourly.n_hours, 0) as suppressed_share, -- share of hourly cells suppressed, [0, 1]
        coalesce(dead_by_day.n_dead_letters, 0) as n_dead_letters,  -- rejected records (count)
        coalesce(dead_by_day.n_below_k_anonymity, 0) as n_below_k_anonymity -- rejected for k_min (count)
    from feeds
    full outer join hourly using (region_id, site_type, day)
    full outer join dead_by_day using (region_id, site_type, day)
)

select * from final
