"""How far the warehouse is behind the Kafka log: the total the catch-up progress bars count towards.

``log_end(settings, topics)`` sums the log-end offsets of every partition; ``committed(settings,
group)`` sums the next offsets the warehouse stored for the consumer group (``ingest_offsets``,
written in the same transaction as the rows). Their difference is the backlog.
"""
from __future__ import annotations

from affectwatch.settings import Settings


def log_end(settings: Settings, topics: list[str], bootstrap: str | None = None) -> int:
    from kafka import KafkaConsumer, TopicPartition

    kw = settings.kafka.client_kwargs()
    if bootstrap:
        kw["bootstrap_servers"] = [b.strip() for b in bootstrap.split(",") if b.strip()]
    consumer = KafkaConsumer(**kw, enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or [])]
        return sum(consumer.end_offsets(parts).values()) if parts else 0
    finally:
        consumer.close()


def committed(settings: Settings, group: str, topics: list[str]) -> int:
    from affectwatch.warehouse import connect
    from ingest.sink import stored_offsets

    con = connect(settings, read_only=True)
    try:
        return sum(stored_offsets(con, group, topics).values())
    finally:
        con.close()
