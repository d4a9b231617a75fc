-- Question: How well calibrated are the forecasts in each state: how often did the observed
--   admissions fall inside the 50% and 95% intervals?
-- How to read: one row per model and state over all horizons. coverage_50 should be near 0.50
--   and coverage_95 near 0.95; much lower means intervals are too narrow (over-confident).
--   relative_wis < 1 means the model beat the baseline in that state.
select
    model,
    location as state,
    n_forecasts,                                   -- scored forecasts
    round(coverage_50, 2) as coverage_50,          -- share, nominal 0.50
    round(coverage_95, 2) as coverage_95,          -- share, nominal 0.95
    round(mean_wis, 1) as mean_wis,                -- admissions
    round(relative_wis, 2) as relative_wis         -- ratio vs baseline
from forecast_scores
where horizon is null
order by model, state;
