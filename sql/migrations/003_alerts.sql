-- 003_alerts: alerts with evidence and lifecycle, subscriptions, email outbox.
-- Written by the scheduler (alerts) and the dashboard (acknowledgements).

create table if not exists alerts (
    alert_id varchar not null,             -- stable id: region|signal|first period
    region_id varchar not null,
    signal varchar not null,               -- e.g. 'ili', 'flu_admissions', 'affect_distress'
    level varchar not null,                -- 'red' | 'yellow' | 'insufficient_data'
    status varchar not null,               -- 'open' | 'ongoing' | 'resolved'
    rule varchar,                          -- rule name from config/alert_rules.yaml
    detectors varchar,                     -- comma-separated detectors that fired
    statistic double,
    threshold double,
    p_value double,
    probability double,                    -- forecast exceedance probability, where used
    observed double,
    expected double,
    data_start date,
    data_end date,
    provisional boolean,                   -- the data period may still be revised
    evidence varchar,                      -- JSON: per-detector statistics
    first_seen timestamptz not null,
    last_updated timestamptz not null,
    resolved_at timestamptz,
    created_at timestamptz not null
);

-- Append-only history of alert state changes (opened, escalated, new_evidence, resolved, ...).
create table if not exists alert_events (
    alert_id varchar not null,
    event varchar not null,
    level varchar,
    detail varchar,
    event_at timestamptz not null
);

-- Acknowledgements (who, when, note, and optional true/false outbreak label for calibration).
create table if not exists alert_acks (
    alert_id varchar not null,
    acknowledged_by varchar not null,
    acknowledged_at timestamptz not null,
    note varchar,
    label varchar                          -- 'true_alarm' | 'false_alarm' | NULL
);

create table if not exists subscriptions (
    subscription_id varchar not null,
    recipient varchar not null,            -- email address
    regions varchar not null,              -- comma-separated region ids, or '*'
    min_level varchar not null,            -- 'yellow' | 'red'
    mode varchar not null,                 -- 'immediate' | 'digest'
    digest_time varchar,                   -- local HH:MM for digests
    timezone varchar,                      -- IANA zone for digests
    active boolean not null,
    created_at timestamptz not null
);

-- One row per (alert or digest, recipient) message to send; each is delivered once.
create table if not exists email_outbox (
    message_id varchar not null,           -- stable RFC 5322 Message-ID
    recipient varchar not null,
    kind varchar not null,                 -- 'immediate' | 'digest'
    alert_ids varchar,                     -- comma-separated
    subject varchar not null,
    status varchar not null,               -- 'pending' | 'sent' | 'failed'
    attempts integer not null,
    next_attempt_at timestamptz,
    last_error varchar,
    created_at timestamptz not null,
    sent_at timestamptz
);

create table if not exists email_attempts (
    message_id varchar not null,
    attempt integer not null,
    attempted_at timestamptz not null,
    outcome varchar not null,              -- 'sending' | 'sent' | 'error'
    error varchar
);

create table if not exists scheduler_runs (
    job varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    status varchar not null,
    detail varchar
);
