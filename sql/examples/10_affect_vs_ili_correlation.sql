-- Question: Does weekly distress move with the ILI percentage, and does it lead it by a week?
-- How to read: one row per region with at least 4 weeks where both are visible. corr_same_week
--   and corr_distress_leads_1w are Pearson correlations (-1..1) over those weeks; with ~8 weeks
--   they are very noisy, and the demo's affect is simulated. Use affect_lift_latest for the
--   backtested answer to "does affect help forecasting".
with

weeks as (
    select
        region_id, week_start, symptom_percent as ili_percent, distress_share,
        lag(distress_share) over (partition by region_id order by week_start) as distress_prev_week
    from fused_region_week
    where syndrome = 'ili'
),

final as (
    select
        region_id,
        count(*) filter (where distress_share is not null and ili_percent is not null) as n_weeks,
        round(corr(distress_share, ili_percent), 2) as corr_same_week,
        round(corr(distress_prev_week, ili_percent), 2) as corr_distress_leads_1w
    from weeks
    group by region_id
    having count(*) filter (where distress_share is not null and ili_percent is not null) >= 4
)

select * from final order by region_id;
