-- stg_symptom_reports: every symptom report and revision, renamed and cast only.
select
    region_id,                                  -- state FIPS (2), county FIPS (5) or H3 cell
    syndrome,                                   -- ili | covid_like | gi | resp | flu_admissions | ...
    period_start,                               -- date, first day of the period
    period_end,                                 -- date, last day of the period (inclusive)
    cast(period_end - period_start + 1 as integer) as period_days,  -- 1 = daily, 7 = MMWR week
    cast(count as bigint) as count,             -- visits / admissions in the period (count)
    cast(denominator as bigint) as denominator, -- total visits in the period (count), NULL if unknown
    source,                                     -- reporting source, e.g. flusight-nhsn, ilinet
    reported_at,                                -- timestamptz, when the source reported this value
    origin,                                     -- 'kafka:<topic>' or 'file:<name>'
    ingested_at                                 -- timestamptz, when the warehouse got it
from wh.symptom_reports
