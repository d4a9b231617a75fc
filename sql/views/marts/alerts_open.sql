-- alerts_open: alerts that are open or ongoing (latest state of each alert), red first,
-- with the latest acknowledgement if any.
with

alerts as (
    select * from analyst.staging.stg_alerts
    qualify row_number() over (partition by alert_id order by last_updated desc) = 1
),

acks as (
    select * from analyst.staging.stg_alert_acks
    qualify row_number() over (partition by alert_id order by acknowledged_at desc) = 1
),

final as (
    select
        alerts.alert_id,
        alerts.region_id,
        alerts.signal,
        alerts.level,                                           -- red | yellow | insufficient_data
        case alerts.level when 'red' then 1 when 'yellow' then 2 else 3 end as level_rank, -- 1 = most severe
        alerts.status,                                          -- open | ongoing
        alerts.rule,
        alerts.detectors,
        alerts.statistic,                                       -- detector units
        alerts.threshold,                                       -- detector units
        alerts.p_value,                                         -- [0, 1]
        alerts.probability,                                     -- [0, 1]
        alerts.observed,                                        -- signal units
        alerts.expected,                                        -- signal units
        alerts.data_start,                                      -- date
        alerts.data_end,                                        -- date
        alerts.provisional,
        alerts.evidence,                                        -- JSON text
        alerts.first_seen,                                      -- timestamptz
        alerts.last_updated,                                    -- timestamptz
        acks.alert_id is not null as acknowledged,
        acks.acknowledged_by,
        acks.acknowledged_at,                                   -- timestamptz
        acks.label as ack_label                                 -- true_alarm | false_alarm | NULL
    from alerts
    left join acks using (alert_id)
    where alerts.status in ('open', 'ongoing')
    order by level_rank, alerts.first_seen
)

select * from final
