-- dead_letters_summary: rejected records by reason, topic and UTC day. No raw payloads.
with

dead as (
    select * from analyst.staging.stg_dead_letters
),

final as (
    select
        received_date as day,                                   -- UTC day the worker rejected them
        topic,                                                  -- Kafka topic or 'file:<name>'
        reason,                                                 -- machine-readable reason
        count(*) as n_dead_letters,                             -- rejected records (count)
        count(distinct region_id) as n_regions,                 -- distinct message keys (count)
        cast(sum(raw_bytes) as bigint) as raw_bytes,                      -- payload size, bytes
        min(received_at) as first_received_at,                  -- timestamptz
        max(received_at) as last_received_at,                   -- timestamptz
        min(detail) as example_detail                           -- one detail message, for orientation
    from dead
    group by all
)

select * from final
