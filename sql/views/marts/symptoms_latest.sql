-- symptoms_latest: the current (latest-revision) value of every (region, syndrome, period).
-- Grain: one row per region, syndrome and period. For "what did we know at time T" use the
-- table macro analyst.symptoms_known_at(T) or attach the warehouse as of a snapshot.
with

as_reported as (
    select * from analyst.main.symptoms_as_reported
),

first_reports as (
    select region_id, syndrome, period_start, period_end, count as first_count, reported_at as first_reported_at
    from as_reported
    where revision = 1
),

final as (
    select
        latest.region_id,
        latest.syndrome,
        latest.period_start,                                    -- date
        latest.period_end,                                      -- date, inclusive
        latest.period_days,                                     -- 1 = day, 7 = week
        latest.count,                                           -- latest count in the period
        latest.denominator,                                     -- total visits (count)
        latest.percent_of_visits,                               -- %
        latest.source,
        latest.reported_at,                                     -- timestamptz of the latest revision
        latest.n_revisions,                                     -- reports received (count)
        latest.n_revisions > 1 as revised,                      -- value was revised at least once
        first_reports.first_count,                              -- value as first reported (count)
        first_reports.first_reported_at,                        -- timestamptz
        latest.count - first_reports.first_count as total_revision -- latest minus first (count)
    from as_reported as latest
    join first_reports using (region_id, syndrome, period_start, period_end)
    where latest.is_latest
)

select * from final
