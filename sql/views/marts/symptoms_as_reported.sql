-- symptoms_as_reported: every report and revision of a (region, syndrome, period) value.
-- Grain: one row per report; revision 1 is the first report, higher numbers are later revisions.
with

reports as (
    select * from analyst.staging.stg_symptom_reports
),

numbered as (
    select
        *,
        row_number() over revisions as revision,
        count(*) over (partition by region_id, syndrome, period_start, period_end) as n_revisions,
        lag(count) over revisions as previous_count
    from reports
    window revisions as (partition by region_id, syndrome, period_start, period_end order by reported_at, ingested_at)
),

final as (
    select
        region_id,
        syndrome,
        period_start,                                           -- date
        period_end,                                             -- date, inclusive
        period_days,                                            -- 1 = day, 7 = week
        count,                                                  -- count in the period
        denominator,                                            -- total visits (count), NULL if unknown
        100.0 * count / nullif(denominator, 0) as percent_of_visits, -- percent of all visits, %
        source,
        reported_at,                                            -- timestamptz
        revision,                                               -- 1 = first report
        n_revisions,                                            -- reports for this period so far (count)
        revision = n_revisions as is_latest,                    -- the current value
        count - previous_count as change_from_previous,         -- change vs the previous revision (count)
        origin,
        ingested_at                                             -- timestamptz
    from numbered
)

select * from final
