-- Question: Which alerts are open right now, and what does the latest ensemble forecast say
--   for the alerting region one week ahead?
-- How to read: one row per open or ongoing alert, red first. median and the 95% bounds are
--   admissions in the week after the latest reference date (NULL when the alert's region has no
--   forecast, e.g. affect alerts); acknowledged tells whether someone is on it.
with

latest_reference as (
    select max(reference_date) as reference_date from forecasts_latest
),

forecast as (
    select location as region_id, median, lower_95, upper_95
    from forecasts_latest
    join latest_reference using (reference_date)
    where model = 'ensemble' and horizon = 1
),

final as (
    select
        alerts_open.region_id, alerts_open.signal, alerts_open.level, alerts_open.status,
        alerts_open.first_seen, alerts_open.acknowledged,
        forecast.median, forecast.lower_95, forecast.upper_95      -- admissions next week
    from alerts_open
    left join forecast using (region_id)
    order by alerts_open.level_rank, alerts_open.first_seen
)

select * from final;
