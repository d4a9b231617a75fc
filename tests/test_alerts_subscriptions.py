"""Subscription validation names every bad field; matching of regions and levels."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alerts.outbox import digest_due
from alerts.subscriptions import Subscription, validate


def test_every_bad_field_is_named_with_its_value():
    with pytest.raises(ValueError) as err:
        validate("not-an-email", "06,California,123", "orange", "digest", "25:00", "Mars/Olympus")
    msg = str(err.value)
    for part in ("recipient: not an email address: 'not-an-email'",
                 "regions: not a state/county FIPS code, H3 cell or '*': ['California', '123']",
                 "min_level: must be 'yellow' or 'red', got 'orange'",
                 "digest_time: must be local HH:MM (24 h), got '25:00'",
                 "timezone: unknown IANA time zone 'Mars/Olympus'"):
        assert part in msg
    with pytest.raises(ValueError, match="mode: must be 'immediate' or 'digest', got 'weekly'"):
        validate("a@b.org", "*", "red", "weekly", None, None)
    assert validate(" a@b.org ", "36, 06 ,06", "red", "immediate", None, None) == ("a@b.org", ("06", "36"), None, None)


def _sub(**kw) -> Subscription:
    base = dict(subscription_id="s", recipient="a@b.org", regions=("06",), min_level="yellow", mode="digest",
                digest_time="07:00", timezone="America/Los_Angeles", active=True,
                created_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    return Subscription(**{**base, **kw})


def test_region_and_level_matching():
    s = _sub()
    assert s.wants("06", "yellow") and s.wants("06037", "red")  # a state covers its counties
    assert not s.wants("36", "red") and not s.wants("06", "insufficient_data") and not s.wants("06", None)
    assert not _sub(min_level="red").wants("06", "yellow")
    assert _sub(regions=("*",)).wants("872830828ffffff", "yellow")


def test_digest_is_due_after_local_time_including_across_dst():
    s = _sub()
    # 2026-03-08 is the US spring-forward day: 07:00 PDT = 14:00 UTC (the day before: 07:00 PST = 15:00 UTC)
    assert digest_due(s, datetime(2026, 3, 7, 14, 59, tzinfo=timezone.utc)) is None
    assert str(digest_due(s, datetime(2026, 3, 7, 15, 0, tzinfo=timezone.utc))) == "2026-03-07"
    assert digest_due(s, datetime(2026, 3, 8, 13, 59, tzinfo=timezone.utc)) is None
    assert str(digest_due(s, datetime(2026, 3, 8, 14, 0, tzinfo=timezone.utc))) == "2026-03-08"
    # a digest scheduled before the subscription existed is not sent
    late = _sub(created_at=datetime(2026, 3, 8, 16, 0, tzinfo=timezone.utc))
    assert digest_due(late, datetime(2026, 3, 8, 17, 0, tzinfo=timezone.utc)) is None
