-- survey_affect_known_at(as_of): survey affect as known on day as_of (a date): per region, day,
-- indicator and source the latest issue on or before as_of; days after as_of are left out.
-- Columns as survey_affect_as_reported (value NULL where suppressed).
-- Example: select * from survey_affect_known_at(date '2021-12-01')
with

known as (
    select * exclude (min_sample_size_required) from analyst.main.survey_affect_as_reported
    where issue <= cast(as_of as date) and date <= cast(as_of as date)
    qualify row_number() over (partition by region_id, date, indicator, source order by issue desc) = 1
),

final as (
    select * from known
)

select * from final
