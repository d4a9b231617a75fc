-- fused_region_week: symptoms and affect side by side per region, MMWR week and syndrome.
-- Grain: one row per region, week (Sunday..Saturday) and syndrome with a symptom value. Weekly
-- reports are used as they are; daily reports are summed into their week when no weekly report
-- exists. Affect columns come from affect_region_week and are NULL when that cell is suppressed.
with

latest as (
    select * from analyst.main.symptoms_latest
),

affect as (
    select * from analyst.main.affect_region_week
),

weekly as (
    select
        region_id, syndrome, period_start as week_start,
        count, denominator, revised, 7 as n_days_reported, reported_at
    from latest
    where period_days = 7 and dayofweek(period_start) = 0
),

daily as (
    select
        region_id, syndrome, cast(period_start - cast(dayofweek(period_start) as integer) as date) as week_start,
        cast(sum(count) as bigint) as count, cast(sum(denominator) as bigint) as denominator, bool_or(revised) as revised,
        count(*) as n_days_reported, max(reported_at) as reported_at
    from latest
    where period_days = 1
    group by all
),

symptoms as (
    select * from weekly
    union all by name
    select * from daily
    where not exists (
        select 1 from weekly
        where weekly.region_id = daily.region_id and weekly.syndrome = daily.syndrome and weekly.week_start = daily.week_start
    )
),

final as (
    select
        symptoms.region_id,
        symptoms.week_start,                                        -- date, Sunday
        cast(symptoms.week_start + 6 as date) as week_end,          -- date, Saturday
        symptoms.syndrome,
        symptoms.count as symptom_count,                            -- latest count in the week
        symptoms.denominator as symptom_denominator,                -- total visits (count)
        100.0 * symptoms.count / nullif(symptoms.denominator, 0) as symptom_percent, -- % of visits
        symptoms.n_days_reported,                                   -- 7 for a weekly report, else days summed
        symptoms.revised as symptom_revised,                        -- any revision in the week's value
        symptoms.reported_at as symptom_reported_at,                -- timestamptz, latest report used
        affect.n_devices as affect_n_devices,                       -- count, NULL if no affect data
        affect.n_scored as affect_n_scored,                         -- scored observations (count)
        affect.valence_mean,                                        -- [-1, 1], NULL when suppressed
        affect.arousal_mean,                                        -- [-1, 1], NULL when suppressed
        affect.distress_share,                                      -- [0, 1], NULL when suppressed
        affect.confidence_mean,                                     -- [0, 1], NULL when suppressed
        affect.model_versions as affect_model_versions,
        coalesce(affect.suppression, 3) as affect_suppression,      -- 0 ok, 1, 2, 5 suppressed, 3 no data, 4 low quality
        coalesce(affect.simulated, false) as affect_simulated       -- affect came from simulated devices
    from symptoms
    left join affect using (region_id, week_start)
)

select * from final
