-- symptoms_known_at(as_of): the value of every (region, syndrome, period) as known at time
-- as_of (a timestamptz): the latest revision reported at or before it. Grain as symptoms_latest.
-- Example: select * from symptoms_known_at(timestamptz '2023-06-30 00:00:00+00')
with

as_reported as (
    select * from analyst.main.symptoms_as_reported
    where reported_at <= cast(as_of as timestamptz)
),

final as (
    select
        region_id,
        syndrome,
        period_start,                                           -- date
        period_end,                                             -- date, inclusive
        period_days,                                            -- 1 = day, 7 = week
        count,                                                  -- count known at as_of
        denominator,                                            -- total visits (count)
        percent_of_visits,                                      -- %
        source,
        reported_at,                                            -- timestamptz of the revision used
        revision                                                -- revision number used (1 = first report)
    from as_reported
    qualify row_number() over (partition by region_id, syndrome, period_start, period_end order by revision desc) = 1
)

select * from final
