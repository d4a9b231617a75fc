-- affect_lift_latest: the latest backtest verdict per location and target on whether affect
-- improves forecasts (WIS ratio with a bootstrap interval, best lead).
with

lift as (
    select * from analyst.staging.stg_affect_lift
    qualify row_number() over (partition by location, target order by created_at desc) = 1
),

final as (
    select
        location,                                               -- region_id or 'overall'
        target,
        verdict,                                                -- affect informative | affect not informative here | insufficient data
        informative,                                            -- ratio_lo > 1
        wis_ratio,                                              -- ratio; > 1 = affect helps
        ratio_lo,                                               -- 90% interval, ratio
        ratio_hi,                                               -- 90% interval, ratio
        lead,                                                   -- in lead_unit
        lead_lo,
        lead_hi,
        lead_unit,                                              -- weeks | days
        n_forecasts,                                            -- count
        simulated,                                              -- affect features from simulated devices
        created_at,                                             -- timestamptz
        run_id
    from lift
)

select * from final
