-- Question: On the latest day of data, which region feeds are thin or stale?
-- How to read: one row per region and site type on the last day with windows, thinnest first.
--   hours_since_last_seen counts from the end of that day; suppressed_share is the share of
--   hourly cells that would be suppressed (too few devices or observations) - high values mean
--   the region's affect is mostly invisible at fine resolution. A feed below the privacy
--   minimums shows below_minimums = true and no counts (operators see them on the dashboard).
with

last_day as (
    select max(day) as day from data_quality_daily where last_seen is not null
),

final as (
    select
        region_id, site_type, below_minimums, n_devices, n_windows, n_hours,
        round(suppressed_share, 2) as suppressed_share,                     -- share of hourly cells
        round(epoch(cast(last_day.day + 1 as timestamptz) - last_seen) / 3600.0, 1) as hours_since_last_seen, -- hours
        round(ingest_delay_minutes, 1) as ingest_delay_minutes,             -- minutes
        n_dead_letters
    from data_quality_daily
    join last_day using (day)
)

select * from final order by below_minimums desc, n_devices, suppressed_share desc, region_id, site_type;
