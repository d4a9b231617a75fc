"""How far the warehouse is behind the Kafka log: the total the catch-up progress bars count towards.

``log_end(settings, topics)`` sums the broker's end offsets of every partition and ``lag(settings,
group, topics)`` the per-partition consumer lag — both as ``ingest.status`` reads and computes them
for ``affectwatch ingest status``; ``committed(settings, group)`` sums the next offsets the warehouse
stored for the consumer group (``ingest_offsets``, written in the same transaction as the rows).
"""
from __future__ import annotations

from affectwatch.settings import Settings


def log_end(settings: Settings, topics: list[str], bootstrap: str | None = None) -> int:
    from ingest.status import end_offsets

    return sum(end_offsets(settings, topics, bootstrap).values())


def _stored(settings: Settings, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    from affectwatch.warehouse import session
    from ingest.sink import stored_offsets

    with session(settings, read_only=True) as con:
        return stored_offsets(con, group, topics)


def committed(settings: Settings, group: str, topics: list[str]) -> int:
    return sum(_stored(settings, group, topics).values())


def lag(settings: Settings, group: str, topics: list[str], bootstrap: str | None = None) -> int:
    """The messages of ``topics`` the warehouse has not stored yet for ``group`` (total consumer lag)."""
    from ingest.status import end_offsets, partition_lag

    ends = end_offsets(settings, topics, bootstrap)
    stored = _stored(settings, group, topics)
    return sum(partition_lag(end, stored.get(tp)) for tp, end in ends.items())
