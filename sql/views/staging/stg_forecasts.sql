-- stg_forecasts: hubverse quantile rows, renamed and cast only.
select
    reference_date,                             -- date (a Saturday) the forecast is made for
    cast(horizon as integer) as horizon,        -- weeks (or days for 'day' targets) after reference_date
    target,                                     -- e.g. 'wk inc flu_admissions'
    target_end_date,                            -- date, end of the forecast target period
    location,                                   -- region_id
    output_type,                                -- 'quantile'
    cast(output_type_id as double) as quantile_level, -- quantile level, (0, 1)
    value,                                      -- forecast value at that level, target units (count)
    model,                                      -- model name
    created_at,                                 -- timestamptz, when the run wrote the row
    run_id                                      -- one id per forecast run
from wh.forecasts
