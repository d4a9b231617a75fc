-- int_affect_cells: THE region-period affect cell, defined once for every consumer (analyst
-- marts, dashboard, forecast panels, alert engine and series, affect anomaly detector, emails).
-- Grain: one row per region, grain ('hour' | 'day' | 'week'), period_start and model_part; days
-- and weeks also get a row for every period between a region's first and last data
-- (suppression 3). Hour cells are split by on-device model version (model_part = the version;
-- '*' for days and weeks) because the anomaly detector compares like with like.
--
-- Counts: windows, distinct devices, scored observations (sum of n_observations: the device
-- model's scored observations, DESIGN.md) and abstentions (sum of n_abstained, never subtracted).
-- Means: each device's period mean is weighted by its scored observations, then every device
-- counts once (one busy device cannot pose as certainty); *_se = SD over devices / sqrt(devices).
-- weight = sum(n_observations x confidence_mean x quality): how much evidence a cell carries when
-- cells are combined (the anomaly detector). quality = scored-weighted mean capture quality.
--
-- suppression (codes of affectwatch.privacy.Suppression), from analyst.staging.privacy_params:
--   3 no data; 1 fewer than k_min scored observations; 2 fewer than min_devices devices;
--   4 capture quality below min_quality; 5 complementary (weeks): the week meets the minimums,
--   but its privacy-suppressed (1, 2) days, taken together, have data and fail the minimums, so
--   publishing the week next to its published days would give their value by differencing
--   (devices A, B, C on Monday and D alone on Wednesday: 4 x week - 3 x Monday = D).
--   Hour cells are never published (no mart, dashboard, email or feature shows them); only the
--   anomaly detector reads them, and it publishes a standardised statistic and p-value, not
--   values in signal units, so days need no protection against hours.
-- Values (means, quality, weight) are NULL unless suppression = 0; counts stay for the pipeline.
with

params as (
    select k_min, min_devices, min_quality from analyst.staging.privacy_params
),

windows as (
    select * from analyst.staging.stg_affect_windows
),

grains as (
    select unnest(['hour', 'day', 'week']) as grain
),

device_period as not materialized (
    select
        windows.region_id,
        grains.grain,
        case grains.grain
            when 'hour' then windows.window_hour
            when 'day' then cast(windows.window_date as timestamp)
            else cast(windows.week_start as timestamp)
        end as period_start,
        case grains.grain when 'hour' then windows.model_version else '*' end as model_part,
        windows.device_id,
        count(*) as n_windows,
        sum(n_scored) as n_scored,
        sum(n_abstained) as n_abstained,
        sum(valence_mean * n_scored) / nullif(sum(n_scored), 0) as valence_mean,
        sum(arousal_mean * n_scored) / nullif(sum(n_scored), 0) as arousal_mean,
        sum(distress_share * n_scored) / nullif(sum(n_scored), 0) as distress_share,
        sum(confidence_mean * n_scored) / nullif(sum(n_scored), 0) as confidence_mean,
        sum(quality * n_scored) as quality_x_scored,
        sum(n_scored * confidence_mean * quality) as weight,
        avg(quality_pose_stability) as pose_stability,
        avg(quality_lighting) as lighting,
        avg(quality_snr_db) as snr_db,
        list(model_version) as model_versions,
        bool_or(simulated) as simulated,
        count(distinct window_date) as n_days
    from windows
    cross join grains
    group by all
),

versions as not materialized (  -- the model version carrying most weight in each cell
    select region_id, grain, period_start, arg_max(model_version, version_weight) as model_version
    from (
        select region_id, grains.grain,
            case grains.grain
                when 'hour' then window_hour
                when 'day' then cast(window_date as timestamp)
                else cast(week_start as timestamp)
            end as period_start,
            model_version,
            sum(n_scored * confidence_mean * quality) as version_weight
        from windows
        cross join grains
        group by all
    )
    group by all
),

cells as not materialized (
    select
        region_id,
        grain,
        period_start,
        model_part,
        count(*) as n_devices,
        cast(sum(n_windows) as bigint) as n_windows,
        cast(sum(n_scored) as bigint) as n_scored,
        cast(sum(n_abstained) as bigint) as n_abstained,
        sum(weight) as weight,
        sum(quality_x_scored) / nullif(sum(n_scored), 0) as quality,
        avg(valence_mean) as valence_mean,
        stddev_samp(valence_mean) / sqrt(count(*)) as valence_se,
        avg(arousal_mean) as arousal_mean,
        stddev_samp(arousal_mean) / sqrt(count(*)) as arousal_se,
        avg(distress_share) as distress_share,
        stddev_samp(distress_share) / sqrt(count(*)) as distress_se,
        avg(confidence_mean) as confidence_mean,
        avg(pose_stability) as pose_stability,
        avg(lighting) as lighting,
        avg(snr_db) as snr_db,
        array_to_string(list_sort(list_distinct(flatten(list(model_versions)))), ',') as model_versions,
        bool_or(simulated) as simulated,
        max(n_days) as n_days
    from device_period
    group by all
),

calendar as not materialized (  -- every day / week between a region's first and last data (no-data cells coded 3)
    select region_id, grain, unnest(generate_series(min(period_start), max(period_start),
                                    case grain when 'day' then interval 1 day else interval 7 day end)) as period_start,
           '*' as model_part
    from cells
    where grain in ('day', 'week')
    group by region_id, grain
    union all
    select region_id, grain, period_start, model_part from cells where grain = 'hour'
),

primary_coded as not materialized (
    select
        calendar.region_id,
        calendar.grain,
        calendar.period_start,
        calendar.model_part,
        coalesce(cells.n_devices, 0) as n_devices,
        coalesce(cells.n_windows, 0) as n_windows,
        coalesce(cells.n_scored, 0) as n_scored,
        coalesce(cells.n_abstained, 0) as n_abstained,
        coalesce(cells.n_days, 0) as n_days,
        cells.* exclude (region_id, grain, period_start, model_part, n_devices, n_windows, n_scored, n_abstained, n_days),
        case
            when coalesce(cells.n_windows, 0) = 0 then 3
            when cells.n_scored < params.k_min then 1
            when cells.n_devices < params.min_devices then 2
            when coalesce(cells.quality, 0) < params.min_quality then 4
            else 0
        end as primary_code
    from calendar
    cross join params
    left join cells using (region_id, grain, period_start, model_part)
),

day_coded as not materialized (
    select primary_coded.* exclude (primary_code), primary_code as suppression
    from primary_coded
    where grain = 'day'
),

day_suppressed as not materialized (  -- per week: devices and scored observations of its privacy-suppressed days
    select device_period.region_id,
           cast(cast(device_period.period_start as date) - cast(dayofweek(device_period.period_start) as integer) as timestamp) as period_start,
           count(distinct device_period.device_id) as n_devices, sum(device_period.n_scored) as n_scored
    from device_period
    join day_coded using (region_id, grain, period_start, model_part)
    where device_period.grain = 'day' and day_coded.suppression in (1, 2)
    group by all
),

week_coded as not materialized (
    select
        primary_coded.* exclude (primary_code),
        case
            when primary_coded.primary_code = 0 and day_suppressed.n_devices is not null
                 and (day_suppressed.n_scored < params.k_min or day_suppressed.n_devices < params.min_devices) then 5
            else primary_coded.primary_code
        end as suppression
    from primary_coded
    cross join params
    left join day_suppressed using (region_id, period_start)
    where primary_coded.grain = 'week'
),

coded as not materialized (
    select * exclude (primary_code), primary_code as suppression from primary_coded where grain = 'hour'
    union all by name
    select * from day_coded
    union all by name
    select * from week_coded
),

final as (
    select
        region_id,
        grain,                                                         -- hour | day | week
        period_start,                                                  -- timestamp (UTC): hour, day or Sunday
        cast(period_start as date) as day,                             -- date of period_start
        n_devices,                                                     -- distinct devices (count)
        n_windows,                                                     -- windows (count)
        n_scored,                                                      -- scored observations (count)
        n_abstained,                                                   -- abstained observations (count)
        n_days,                                                        -- days with windows, max over devices (count)
        case when suppression = 0 then n_abstained / (n_scored + n_abstained) end as abstain_share, -- [0, 1]
        case when suppression = 0 then weight end as weight,           -- scored obs x confidence x quality
        case when suppression in (0, 4) then quality end as quality,   -- [0, 1] (shown for low-quality cells too)
        case when suppression = 0 then valence_mean end as valence_mean,       -- [-1, 1]
        case when suppression = 0 then valence_se end as valence_se,
        case when suppression = 0 then arousal_mean end as arousal_mean,       -- [-1, 1]
        case when suppression = 0 then arousal_se end as arousal_se,
        case when suppression = 0 then distress_share end as distress_share,   -- [0, 1]
        case when suppression = 0 then distress_se end as distress_se,
        case when suppression = 0 then confidence_mean end as confidence_mean, -- [0, 1]
        case when suppression = 0 then pose_stability end as pose_stability,   -- [0, 1]
        case when suppression = 0 then lighting end as lighting,               -- [0, 1]
        case when suppression = 0 then snr_db end as snr_db,                   -- dB
        model_part,                                                    -- hour cells: model version; else '*'
        case when grain = 'hour' then model_part else versions.model_version end as model_version, -- version carrying most weight
        model_versions,                                                -- comma-separated model ids
        coalesce(strpos(model_versions, ',') > 0, false) as model_version_mixed, -- more than one model
        coalesce(simulated, false) as simulated,                       -- built from simulated devices
        suppression                                                    -- 0 ok; 1, 2, 5 privacy; 3 no data; 4 quality
    from coded
    left join versions using (region_id, grain, period_start)
)

select * from final
