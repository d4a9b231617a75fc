-- alert_history: every state change and acknowledgement of every alert, in order.
-- Grain: one row per event; acknowledgements (from alert_acks) appear as event 'acknowledged'.
with

alerts as (
    select * from analyst.staging.stg_alerts
    qualify row_number() over (partition by alert_id order by last_updated desc) = 1
),

events as (
    select alert_id, event, level, detail, event_at, cast(null as varchar) as actor, cast(null as varchar) as label
    from analyst.staging.stg_alert_events
),

acks as (
    select alert_id, 'acknowledged' as event, cast(null as varchar) as level, note as detail,
           acknowledged_at as event_at, acknowledged_by as actor, label
    from analyst.staging.stg_alert_acks
),

all_events as (
    select * from events
    union all
    select * from acks
),

final as (
    select
        all_events.alert_id,
        alerts.region_id,
        alerts.signal,
        alerts.rule,
        row_number() over (partition by all_events.alert_id order by all_events.event_at, all_events.event) as event_seq, -- 1 = first
        all_events.event,                                       -- opened | escalated | new_evidence | resolved | acknowledged | ...
        all_events.level,                                       -- level after the event (NULL for acknowledgements)
        all_events.detail,
        all_events.actor,                                       -- who acknowledged (acknowledgements only)
        all_events.label,                                       -- true_alarm | false_alarm (acknowledgements only)
        all_events.event_at,                                    -- timestamptz
        alerts.status as current_status                         -- open | ongoing | resolved
    from all_events
    left join alerts using (alert_id)
)

select * from final
