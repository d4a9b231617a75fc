-- 005_forecast_lift_level: the confidence level of each affect_lift interval.
-- Per-region intervals are Bonferroni-adjusted for the number of regions (1 - 0.10 / n_regions),
-- so that noise alone rarely makes some region look "informative"; the 'overall' row uses 0.90.
alter table affect_lift add column if not exists interval_level double;
