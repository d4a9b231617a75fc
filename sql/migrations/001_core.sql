-- 001_core: raw pipeline tables written by the ingest worker and the symptom loader.
-- Column names and types of affect_windows / symptom_reports are checked against the record
-- contracts in ingest/contracts.py by tests/test_contracts.py. Raw tables are for the pipeline;
-- analysts use the views in sql/views (small cells suppressed there).

-- One row per accepted AffectWindow v1 (one device, one window). Key: (device_id, window_start).
create table if not exists affect_windows (
    device_id varchar not null,            -- pseudonymous HMAC id (rotating salt)
    region_id varchar not null,            -- state FIPS (2), county FIPS (5) or H3 cell (res <= 7)
    site_type varchar not null,            -- ed | clinic | school | transit | other
    window_start timestamptz not null,
    window_end timestamptz not null,
    n_observations integer not null,       -- >= k_min
    n_abstained integer not null,          -- observations the device model refused to score
    valence_mean double not null,          -- [-1, 1]
    arousal_mean double not null,          -- [-1, 1]
    valence_sd double not null,
    arousal_sd double not null,
    distress_share double not null,        -- [0, 1]
    confidence_mean double not null,       -- [0, 1]
    quality_pose_stability double,         -- from quality.pose_stability (face)
    quality_lighting double,               -- from quality.lighting (face)
    quality_snr_db double,                 -- from quality.snr_db (voice)
    modality varchar not null,             -- face | voice | multimodal
    model_version varchar not null,
    dp_epsilon double,                     -- Laplace epsilon applied on the device, NULL if none
    schema_version integer not null,
    simulated boolean not null,            -- true when produced by the device-fleet simulator (Kafka header aw-simulated)
    kafka_topic varchar,
    kafka_partition integer,
    kafka_offset bigint,
    produced_at timestamptz,               -- Kafka record timestamp
    ingested_at timestamptz not null
);

-- SymptomReport v1; later reports for the same (region, syndrome, period) are revisions: all kept.
create table if not exists symptom_reports (
    region_id varchar not null,
    syndrome varchar not null,             -- ili | covid_like | gi | resp | flu_admissions | ...
    period_start date not null,
    period_end date not null,              -- a day or an MMWR week (Sunday..Saturday)
    count bigint not null,
    denominator bigint,                    -- total visits, optional
    source varchar not null,
    reported_at timestamptz not null,      -- when the source reported this value (revision time)
    schema_version integer not null,
    origin varchar not null,               -- 'kafka:<topic>' or 'file:<name>'
    kafka_partition integer,
    kafka_offset bigint,
    ingested_at timestamptz not null
);

-- Every record that failed to decode or validate, with its raw bytes and a named reason.
create table if not exists dead_letters (
    topic varchar,                         -- Kafka topic, or 'file:<name>' for the CSV loader
    kafka_partition integer,
    kafka_offset bigint,
    message_key blob,
    raw blob,                              -- the raw payload (the only place raw payloads are kept)
    reason varchar not null,               -- bad_json | unknown_field | missing_field | wrong_type | value_out_of_range | below_k_anonymity | future_window | window_too_long | window_too_short | window_end_before_start | bad_region_id | oversized_payload | unsupported_schema_version | not_an_object
    detail varchar,                        -- human-readable detail (field name, bad value)
    produced_at timestamptz,
    received_at timestamptz not null
);

-- Next Kafka offset per (group, topic, partition), written in the same transaction as the rows.
-- Append-only; the current position is the max(next_offset) per partition.
create table if not exists ingest_offsets (
    consumer_group varchar not null,
    topic varchar not null,
    kafka_partition integer not null,
    next_offset bigint not null,
    committed_at timestamptz not null
);

-- Ingest worker heartbeats/progress (for data-quality pages): one row per committed batch.
create table if not exists ingest_batches (
    consumer_group varchar not null,
    committed_at timestamptz not null,
    n_messages integer not null,
    n_affect integer not null,
    n_symptoms integer not null,
    n_duplicates integer not null,
    n_dead_letters integer not null,
    max_lag bigint,                        -- max messages behind the log end across partitions
    seconds double
);
