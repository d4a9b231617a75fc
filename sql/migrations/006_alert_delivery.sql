-- 006_alert_delivery: columns the alert lifecycle and the email outbox need beyond 003.

-- When and at which level recipients were last notified about an alert (cooldown, escalation).
alter table alerts add column if not exists notified_level varchar;
alter table alerts add column if not exists last_notified_at timestamptz;
-- The abstention reason when level = 'insufficient_data' (too_few_devices, short_history, ...).
alter table alerts add column if not exists reason varchar;

-- The full rendered RFC 5322 message, frozen at queue time so that a retry after a crash sends
-- byte-for-byte the same message (same Message-ID) even if the alert changed since.
alter table email_outbox add column if not exists message blob;
alter table email_outbox add column if not exists subscription_id varchar;
-- Why this message exists: 'opened:red:2026-01-10', 'escalated:red:...', 'digest:2026-01-11'.
alter table email_outbox add column if not exists trigger varchar;
