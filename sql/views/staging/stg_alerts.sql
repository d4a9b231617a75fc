-- stg_alerts: alert rows, renamed and cast only.
select
    alert_id,                                   -- region|signal|first period
    region_id,
    signal,                                     -- ili | flu_admissions | affect_distress | ...
    level,                                      -- red | yellow | insufficient_data
    status,                                     -- open | ongoing | resolved
    rule,                                       -- rule name in config/alert_rules.yaml
    detectors,                                  -- comma-separated detectors that fired
    statistic,                                  -- detector statistic, detector units
    threshold,                                  -- threshold of the statistic, detector units
    p_value,                                    -- probability, [0, 1]
    probability,                                -- forecast exceedance probability, [0, 1]
    observed,                                   -- observed value, signal units
    expected,                                   -- expected value, signal units
    data_start,                                 -- date, first day of data used
    data_end,                                   -- date, last day of data used
    provisional,                                -- data may still be revised
    evidence,                                   -- JSON text: per-detector statistics
    first_seen,                                 -- timestamptz
    last_updated,                               -- timestamptz
    resolved_at,                                -- timestamptz, NULL while active
    created_at                                  -- timestamptz
from wh.alerts
