-- 002_forecasts: forecasts (hubverse quantile format), scores and affect-lift evidence.
-- Written by analytics (affectwatch forecast run / backtest --to-warehouse).

-- Hubverse quantile rows: 23 FluSight levels per (reference_date, horizon, location, model).
create table if not exists forecasts (
    reference_date date not null,          -- the Saturday the forecast is made for
    horizon integer not null,              -- weeks after reference_date (0..3) or days (1..14) for daily targets
    target varchar not null,               -- e.g. 'wk inc ili' , 'wk inc flu hosp', 'day inc ili'
    target_end_date date not null,         -- reference_date + 7*horizon (or + horizon days)
    location varchar not null,             -- region_id
    output_type varchar not null,          -- 'quantile'
    output_type_id double not null,        -- quantile level
    value double not null,                 -- non-negative, non-crossing across levels
    model varchar not null,                -- e.g. 'baseline', 'glm_nb', 'glm_nb_affect', 'ensemble'
    created_at timestamptz not null,
    run_id varchar                         -- one id per forecast run
);

-- Scores of past forecasts against truth, by model, location, horizon and reference date.
create table if not exists forecast_scores (
    model varchar not null,
    location varchar not null,
    target varchar not null,
    reference_date date not null,
    horizon integer not null,
    wis double,
    dispersion double,
    overprediction double,
    underprediction double,
    cover_50 boolean,
    cover_80 boolean,
    cover_95 boolean,
    pit double,                            -- randomised PIT value of the observation
    observed double,
    created_at timestamptz not null,
    run_id varchar
);

-- Whether affect improves the forecast, per region ('overall' for all), from a backtest.
create table if not exists affect_lift (
    location varchar not null,
    target varchar not null,
    wis_ratio double,                      -- WIS(symptom-only) / WIS(fused); > 1 means affect helps
    ratio_lo double,                       -- block-bootstrap 90% interval
    ratio_hi double,
    lead double,                           -- lag (weeks) at which affect best predicts symptoms
    lead_lo double,
    lead_hi double,
    lead_unit varchar,                     -- 'weeks' or 'days'
    informative boolean not null,          -- ratio_lo > 1: the product uses the fused model here
    verdict varchar not null,              -- 'affect informative' | 'affect not informative here' | 'insufficient data'
    n_forecasts integer,
    simulated boolean,                     -- affect features came from simulated devices
    created_at timestamptz not null,
    run_id varchar
);
