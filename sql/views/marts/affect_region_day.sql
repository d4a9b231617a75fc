-- affect_region_day: affect per region and UTC day; the day grain of the one cell definition
-- (analyst.staging.int_affect_cells: counts, device-weighted means, suppression incl.
-- complementary suppression). Grain: one row per region and day between a region's first and
-- last window (days without windows carry suppression = 3, no data).
with

cells as (
    select * from analyst.staging.int_affect_cells where grain = 'day'
),

labels as (
    select * from analyst.staging.privacy_labels
),

final as (
    select
        cells.region_id,
        cells.day,                                                     -- UTC day
        cells.* exclude (region_id, grain, period_start, model_part, day, n_days, weight, model_version,
                         valence_se, arousal_se, distress_se),
        labels.label as suppression_label                              -- human-readable suppression code
    from cells
    join labels on labels.code = cells.suppression
)

select * from final
