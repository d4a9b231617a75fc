-- survey_affect_region_day: the latest issue of every survey-affect cell (region, day, indicator,
-- source), suppressed as in survey_affect_as_reported, with the 95% band value +- 1.96 stderr.
with

latest as (
    select * from analyst.main.survey_affect_as_reported
    qualify row_number() over (partition by region_id, date, indicator, source order by issue desc) = 1
),

final as (
    select
        latest.* exclude (min_sample_size_required),      -- as survey_affect_as_reported
        value - 1.96 * stderr as value_lo,                -- % of people, lower end of the 95% band
        value + 1.96 * stderr as value_hi,                -- % of people, upper end of the 95% band
        case suppression when 0 then 'ok' else 'suppressed: survey sample size below ' || min_sample_size_required end
            as suppression_label
    from latest
)

select * from final
