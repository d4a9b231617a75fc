-- stg_alert_events: alert state changes, renamed and cast only.
select
    alert_id,
    event,                                      -- opened | escalated | new_evidence | resolved | ...
    level,                                      -- level after the event
    detail,                                     -- human-readable detail
    event_at                                    -- timestamptz
from wh.alert_events
