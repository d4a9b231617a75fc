-- stg_affect_lift: backtest verdicts on whether affect improves forecasts, renamed and cast only.
select
    location,                                   -- region_id, or 'overall'
    target,
    wis_ratio,                                  -- WIS(symptom-only) / WIS(fused), ratio; > 1 = affect helps
    ratio_lo,                                   -- lower end of the 90% block-bootstrap interval, ratio
    ratio_hi,                                   -- upper end, ratio
    lead,                                       -- lead of affect over symptoms, in lead_unit
    lead_lo,
    lead_hi,
    lead_unit,                                  -- 'weeks' | 'days'
    informative,                                -- ratio_lo > 1
    verdict,                                    -- 'affect informative' | 'affect not informative here' | 'insufficient data'
    cast(n_forecasts as integer) as n_forecasts,-- forecasts compared (count)
    simulated,                                  -- affect features came from simulated devices
    created_at,                                 -- timestamptz
    run_id
from wh.affect_lift
