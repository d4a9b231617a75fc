-- affect_region_week: affect per region and MMWR week (Sunday..Saturday, UTC days); the week
-- grain of the one cell definition (analyst.staging.int_affect_cells). A week is suppressed
-- (code 5) when its suppressed days together would be recoverable by differencing.
-- Grain: one row per region and week between a region's first and last window (weeks without
-- windows carry suppression = 3, no data).
with

cells as (
    select * from analyst.staging.int_affect_cells where grain = 'week'
),

labels as (
    select * from analyst.staging.privacy_labels
),

final as (
    select
        cells.region_id,
        cells.day as week_start,                                       -- date, Sunday
        cast(cells.day + 6 as date) as week_end,                       -- date, Saturday
        cells.* exclude (region_id, grain, period_start, model_part, day, weight, model_version,
                         valence_se, arousal_se, distress_se),
        labels.label as suppression_label                              -- human-readable suppression code
    from cells
    join labels on labels.code = cells.suppression
)

select * from final
