-- stg_forecast_scores: per-forecast scores, renamed and cast only.
select
    model,
    location,                                   -- region_id
    target,
    reference_date,                             -- date
    cast(horizon as integer) as horizon,        -- weeks (or days) after reference_date
    wis,                                        -- weighted interval score, target units (count)
    dispersion,                                 -- WIS component, target units
    overprediction,                             -- WIS component, target units
    underprediction,                            -- WIS component, target units
    cover_50,                                   -- observed inside the central 50% interval
    cover_80,                                   -- observed inside the central 80% interval
    cover_95,                                   -- observed inside the central 95% interval
    pit,                                        -- probability integral transform, [0, 1]
    observed,                                   -- observed value, target units (count)
    created_at,                                 -- timestamptz
    run_id
from wh.forecast_scores
