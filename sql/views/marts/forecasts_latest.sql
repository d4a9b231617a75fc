-- forecasts_latest: the latest run per (reference_date, model, location, target), one row per
-- horizon with the median and central 50/80/95% interval bounds, joined with the observed value
-- (latest revision) when the target is 'wk inc <syndrome>' and that week has been reported.
with

forecasts as (
    select * from analyst.staging.stg_forecasts
    where output_type = 'quantile'
),

latest_runs as (
    select reference_date, model, location, target, arg_max(run_id, created_at) as run_id, max(created_at) as created_at
    from forecasts
    group by all
),

latest as (
    select forecasts.*
    from forecasts
    join latest_runs using (reference_date, model, location, target, run_id)
),

wide as (
    select
        reference_date, model, location, target, horizon, target_end_date, run_id,
        max(created_at) as created_at,
        count(*) as n_quantiles,
        max(value) filter (where quantile_level = 0.5) as median,
        max(value) filter (where quantile_level = 0.25) as lower_50,
        max(value) filter (where quantile_level = 0.75) as upper_50,
        max(value) filter (where quantile_level = 0.1) as lower_80,
        max(value) filter (where quantile_level = 0.9) as upper_80,
        max(value) filter (where quantile_level = 0.025) as lower_95,
        max(value) filter (where quantile_level = 0.975) as upper_95
    from latest
    group by all
),

observed as (
    select region_id as location, 'wk inc ' || syndrome as target, period_end as target_end_date, count as observed
    from analyst.main.symptoms_latest
    where period_days = 7
),

final as (
    select
        wide.reference_date,                                    -- date (Saturday)
        wide.model,
        wide.location,                                          -- region_id
        wide.target,
        wide.horizon,                                           -- weeks (or days) ahead
        wide.target_end_date,                                   -- date
        wide.median,                                            -- target units (count)
        wide.lower_50, wide.upper_50,                           -- central 50% interval, target units
        wide.lower_80, wide.upper_80,                           -- central 80% interval, target units
        wide.lower_95, wide.upper_95,                           -- central 95% interval, target units
        observed.observed,                                      -- observed value, NULL until reported
        wide.n_quantiles,                                       -- quantile levels stored (23 expected)
        wide.run_id,
        wide.created_at                                         -- timestamptz of the run
    from wide
    left join observed using (location, target, target_end_date)
)

select * from final
