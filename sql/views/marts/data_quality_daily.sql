-- data_quality_daily: feed health per region, site type and UTC day: windows, devices, last
-- seen, ingest delay, dead letters, and how often the region's hourly affect cells are suppressed.
-- Grain: one row per region, site type and day with windows or dead letters. Dead letters whose
-- payload names no site type are counted under site_type 'unknown'. A region-site-day below the
-- privacy minimums (k_min scored observations, min_devices devices) shows no counts here
-- (below_minimums = true); operators see them on the dashboard's admin-only data-quality page.
with

windows as (
    select * from analyst.staging.stg_affect_windows
),

dead as (
    select * from analyst.staging.stg_dead_letters
),

params as (
    select k_min, min_devices from analyst.staging.privacy_params
),

hour_cells as (
    select * from analyst.staging.int_affect_cells where grain = 'hour'
),

feeds as (
    select
        region_id,
        site_type,
        window_date as day,
        count(*) as n_windows,
        count(distinct device_id) as n_devices,
        cast(sum(n_scored) as bigint) as n_scored,
        cast(sum(n_abstained) as bigint) as n_abstained,
        max(window_end) as last_seen,
        median(epoch(ingested_at - window_end)) / 60.0 as ingest_delay_minutes,
        array_to_string(list_sort(list_distinct(list(model_version))), ',') as model_versions,
        bool_or(simulated) as simulated
    from windows
    group by region_id, site_type, window_date
),

masked as (  -- counts of a region-site-day below the minimums are not shown to analysts
    select
        feeds.*,
        feeds.n_scored < params.k_min or feeds.n_devices < params.min_devices as below_minimums
    from feeds
    cross join params
),

hourly as (  -- the region's hourly cells (the one cell definition), joined to each of its site types
    select
        masked.region_id, masked.site_type, masked.day,
        count(*) as n_hours,
        count(*) filter (where hour_cells.suppression <> 0) as n_hours_suppressed
    from masked
    join hour_cells on hour_cells.region_id = masked.region_id and hour_cells.day = masked.day
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
        coalesce(feeds.below_minimums, false) as below_minimums,    -- counts hidden: below the privacy minimums
        case when not feeds.below_minimums then feeds.n_windows end as n_windows,   -- windows (count)
        case when not feeds.below_minimums then feeds.n_devices end as n_devices,   -- distinct devices (count)
        case when not feeds.below_minimums then feeds.n_scored end as n_scored,     -- scored observations (count)
        case when not feeds.below_minimums
             then feeds.n_abstained / (feeds.n_scored + feeds.n_abstained) end as abstain_share, -- [0, 1]
        feeds.last_seen,                                            -- timestamptz, latest window_end
        feeds.ingest_delay_minutes,                                 -- median window_end -> ingested, minutes
        feeds.model_versions,                                       -- comma-separated model ids
        coalesce(feeds.simulated, false) as simulated,
        coalesce(hourly.n_hours, 0) as n_hours,                     -- hours with windows (count)
        hourly.n_hours_suppressed / nullif(hourly.n_hours, 0) as suppressed_share, -- share of hourly cells suppressed, [0, 1]
        coalesce(dead_by_day.n_dead_letters, 0) as n_dead_letters,  -- rejected records (count)
        coalesce(dead_by_day.n_below_k_anonymity, 0) as n_below_k_anonymity -- rejected for k_min (count)
    from masked as feeds
    full outer join hourly using (region_id, site_type, day)
    full outer join dead_by_day using (region_id, site_type, day)
)

select * from final
