-- stg_dead_letters: rejected records WITHOUT their raw payload (renamed and cast only).
-- The raw bytes stay in wh.dead_letters for the pipeline; only their size passes through.
select
    topic,                                              -- Kafka topic, or 'file:<name>'
    cast(kafka_partition as integer) as kafka_partition,
    kafka_offset,
    try(decode(message_key)) as region_id,              -- message key = region id (UTF-8), NULL if none/invalid
    cast(octet_length(raw) as bigint) as raw_bytes,     -- size of the raw payload, bytes
    reason,                                             -- machine-readable rejection reason
    detail,                                             -- human-readable detail (field, bad value)
    produced_at,                                        -- timestamptz, Kafka record time
    received_at,                                        -- timestamptz, when the worker rejected it
    cast(timezone('UTC', received_at) as date) as received_date, -- UTC day of received_at
    try(json_extract_string(decode(raw), '$.site_type')) as site_type -- site type if the payload names one
from wh.dead_letters
