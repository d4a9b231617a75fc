-- Question: How long did it take from an alert opening to its acknowledgement, and how did it end?
-- How to read: one row per alert. hours_to_ack is NULL for alerts nobody acknowledged;
--   ack_label records whether the acknowledger judged it a true or false alarm (for calibration).
with

events as (
    select * from alert_history
),

per_alert as (
    select
        alert_id,
        any_value(region_id) as region_id,
        any_value(signal) as signal,
        any_value(current_status) as current_status,
        min(event_at) filter (where event = 'opened') as opened_at,
        min(event_at) filter (where event = 'acknowledged') as acknowledged_at,
        max(event_at) filter (where event = 'resolved') as resolved_at,
        any_value(label) filter (where event = 'acknowledged') as ack_label
    from events
    group by alert_id
),

final as (
    select
        *,
        round(epoch(acknowledged_at - opened_at) / 3600.0, 1) as hours_to_ack,   -- hours
        round(epoch(resolved_at - opened_at) / 86400.0, 1) as days_to_resolve    -- days
    from per_alert
)

select * from final order by opened_at;
