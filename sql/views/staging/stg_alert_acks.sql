-- stg_alert_acks: acknowledgements, renamed and cast only.
select
    alert_id,
    acknowledged_by,                            -- user (email) who acknowledged
    acknowledged_at,                            -- timestamptz
    note,
    label                                       -- true_alarm | false_alarm | NULL
from wh.alert_acks
