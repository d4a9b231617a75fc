-- stg_ingest_batches: committed ingest batches, renamed and cast only.
select
    consumer_group,
    committed_at,                               -- timestamptz
    cast(timezone('UTC', committed_at) as date) as committed_date, -- UTC day
    n_messages,                                 -- messages in the batch (count)
    n_affect,                                   -- affect windows written (count)
    n_symptoms,                                 -- symptom reports written (count)
    n_duplicates,                               -- retried messages skipped (count)
    n_dead_letters,                             -- messages dead-lettered (count)
    max_lag,                                    -- messages behind the log end (count)
    seconds                                     -- batch duration, seconds
from wh.ingest_batches
