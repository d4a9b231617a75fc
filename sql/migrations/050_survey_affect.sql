-- 050_survey_affect: region-level affect indicators from population surveys (e.g. the COVID-19
-- Trends and Impact Survey via Delphi COVIDcast), kept apart from device windows (affect_windows).
-- Every published value is kept: a later `issue` of the same (region, date, indicator, source) is a
-- revision next to the earlier one; "as of D" uses the latest issue <= D. Raw table: analysts read
-- the suppressed view survey_affect_region_day (cells below the minimum sample size suppressed).
create table if not exists survey_affect (
    region_id varchar not null,            -- 2-digit state FIPS (or county FIPS / H3 cell)
    date date not null,                    -- the day the estimate describes (COVIDcast time_value)
    indicator varchar not null,            -- e.g. wdepressed_7d, wworried_finances, wili
    source varchar not null,               -- e.g. delphi-covidcast:fb-survey
    modality varchar not null,             -- always 'survey' here ('device' = affect_windows)
    value double not null,                 -- estimate, in the indicator's unit (percent of people)
    stderr double,                         -- standard error of value (same unit)
    sample_size double,                    -- effective number of respondents behind the estimate
    issue date not null,                   -- the day this value was published (revision key)
    origin varchar not null,               -- 'file:<name>'
    loaded_at timestamptz not null
);
