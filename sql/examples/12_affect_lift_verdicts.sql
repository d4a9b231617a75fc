-- Question: Where does affect improve the admission forecasts, according to the latest backtest?
-- How to read: one row per location ('overall' = all). wis_ratio > 1 means the fused model
--   beat the symptom-only model; it counts as informative only when the whole 90% interval
--   (ratio_lo..ratio_hi) is above 1. 'insufficient data' means too few forecasts to tell.
select
    location,
    verdict,
    round(wis_ratio, 3) as wis_ratio,                 -- ratio
    round(ratio_lo, 3) as ratio_lo,
    round(ratio_hi, 3) as ratio_hi,
    lead, lead_unit,
    n_forecasts,
    simulated
from affect_lift_latest
order by informative desc, wis_ratio desc nulls last, location;
