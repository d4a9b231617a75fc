-- forecast_scores: scoring summary by model, location, target and horizon (horizon NULL =
-- all horizons), from the latest score of each forecast. Relative WIS compares a model with
-- the 'baseline' model on the forecasts both made (same location, target, date, horizon).
-- Lives in the analyst catalog: analyst.forecast_scores (the raw table is wh.forecast_scores).
with

scores as (
    select * from analyst.staging.stg_forecast_scores
    qualify row_number() over (partition by model, location, target, reference_date, horizon order by created_at desc) = 1
),

paired as (
    select scores.*, baseline.wis as baseline_wis
    from scores
    left join scores as baseline
        on baseline.model = 'baseline'
        and baseline.location = scores.location and baseline.target = scores.target
        and baseline.reference_date = scores.reference_date and baseline.horizon = scores.horizon
),

summary as (
    select
        model, location, target, horizon,
        count(*) as n_forecasts,
        min(reference_date) as first_reference_date,
        max(reference_date) as last_reference_date,
        avg(wis) as mean_wis,
        avg(dispersion) as mean_dispersion,
        avg(overprediction) as mean_overprediction,
        avg(underprediction) as mean_underprediction,
        avg(cast(cover_50 as double)) as coverage_50,
        avg(cast(cover_80 as double)) as coverage_80,
        avg(cast(cover_95 as double)) as coverage_95,
        avg(pit) as mean_pit,
        sum(wis) filter (where baseline_wis is not null) / nullif(sum(baseline_wis), 0) as relative_wis,
        count(baseline_wis) as n_paired_with_baseline
    from paired
    group by grouping sets ((model, location, target, horizon), (model, location, target))
),

final as (
    select
        model,
        location,                                               -- region_id
        target,
        horizon,                                                -- weeks ahead; NULL = all horizons
        n_forecasts,                                            -- scored forecasts (count)
        first_reference_date,                                   -- date
        last_reference_date,                                    -- date
        mean_wis,                                               -- target units (count)
        mean_dispersion,                                        -- target units
        mean_overprediction,                                    -- target units
        mean_underprediction,                                   -- target units
        coverage_50,                                            -- share inside the 50% interval, [0, 1] (nominal 0.5)
        coverage_80,                                            -- share inside the 80% interval, [0, 1] (nominal 0.8)
        coverage_95,                                            -- share inside the 95% interval, [0, 1] (nominal 0.95)
        mean_pit,                                               -- [0, 1], 0.5 if calibrated
        relative_wis,                                           -- ratio vs baseline; < 1 = better than baseline
        n_paired_with_baseline                                  -- forecasts with a baseline pair (count)
    from summary
)

select * from final
