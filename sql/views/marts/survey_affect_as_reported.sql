-- survey_affect_as_reported: every published survey-affect value (modality survey, REAL) and its
-- revisions, cells below the minimum sample size suppressed. Grain: one row per region, day,
-- indicator, source and issue. The one SQL place of the survey suppression rule
-- (as analytics.survey_affect.suppress): sample_size missing or < min_survey_sample_size -> code 6.
with

params as (
    select min_sample_size from analyst.staging.survey_privacy_params
),

rows as (
    select
        region_id,
        date,
        indicator,
        source,
        modality,
        value,
        stderr,
        sample_size,
        issue,
        row_number() over (partition by region_id, date, indicator, source order by issue) as revision
    from wh.survey_affect
),

final as (
    select
        rows.region_id,                                               -- state FIPS (2), county FIPS (5) or H3 cell
        rows.date,                                                    -- day the estimate describes
        rows.indicator,                                               -- e.g. wdepressed_7d
        rows.source,                                                  -- e.g. delphi-covidcast:fb-survey
        rows.modality,                                                -- survey
        'REAL' as data_label,                                         -- survey affect is measured on real people
        case when rows.sample_size >= params.min_sample_size then rows.value end as value,   -- % of people
        case when rows.sample_size >= params.min_sample_size then rows.stderr end as stderr, -- % points
        rows.sample_size,                                             -- effective respondents (count)
        rows.issue,                                                   -- day published
        rows.revision,                                                -- 1 = first issue
        case when rows.sample_size >= params.min_sample_size then 0 else 6 end as suppression, -- 0 ok, 6 sample too small
        params.min_sample_size as min_sample_size_required
    from rows
    cross join params
)

select * from final
