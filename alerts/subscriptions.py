"""Subscriptions: who receives which alerts (regions, minimum level), at once or as a daily digest."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings
from affectwatch.warehouse import session
from affectwatch.warehouse import rows as _rows
from alerts.rules import LEVEL_RANK

log = get_logger(__name__)

_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_REGION = re.compile(r"^(US|\d{2}|\d{5}|[0-9a-f]{15})$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MODES = ("immediate", "digest")


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    recipient: str
    regions: tuple[str, ...]  # ('*',) = every region
    min_level: str
    mode: str
    digest_time: str | None
    timezone: str | None
    active: bool
    created_at: datetime

    def covers(self, region_id: str) -> bool:
        if "*" in self.regions or region_id in self.regions:
            return True
        return len(region_id) == 5 and region_id[:2] in self.regions  # a state covers its counties

    def wants(self, region_id: str, level: str | None) -> bool:
        """True when an alert of this level in this region is for this subscriber."""
        if level not in ("red", "yellow") or LEVEL_RANK[level] < LEVEL_RANK[self.min_level]:
            return False
        return self.covers(region_id)


def validate(recipient: str, regions: str | list[str], min_level: str, mode: str,
             digest_time: str | None, tz: str | None) -> tuple[str, tuple[str, ...], str | None, str | None]:
    """Check every field; raise ValueError listing each bad one with its value."""
    errors = []
    recipient = (recipient or "").strip()
    if not _EMAIL.match(recipient):
        errors.append(f"recipient: not an email address: {recipient!r}")
    items = regions.split(",") if isinstance(regions, str) else list(regions)
    items = [r.strip() for r in items if r and r.strip()]
    if not items:
        errors.append("regions: give region ids (state FIPS '06', county FIPS '06037', H3 cell) or '*'")
    bad = [r for r in items if r != "*" and not _REGION.match(r)]
    if bad:
        errors.append(f"regions: not a state/county FIPS code, H3 cell or '*': {bad}")
    if min_level not in ("yellow", "red"):
        errors.append(f"min_level: must be 'yellow' or 'red', got {min_level!r}")
    if mode not in MODES:
        errors.append(f"mode: must be 'immediate' or 'digest', got {mode!r}")
    if mode == "digest":
        digest_time = digest_time or "07:00"
        if not _HHMM.match(digest_time):
            errors.append(f"digest_time: must be local HH:MM (24 h), got {digest_time!r}")
        tz = tz or get_settings().alerts.timezone
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"timezone: unknown IANA time zone {tz!r}")
    if errors:
        raise ValueError("invalid subscription: " + "; ".join(errors))
    return recipient, tuple(sorted(set(items))), digest_time, tz


def _from_row(row: dict) -> Subscription:
    return Subscription(
        subscription_id=row["subscription_id"], recipient=row["recipient"],
        regions=tuple(r for r in row["regions"].split(",") if r), min_level=row["min_level"], mode=row["mode"],
        digest_time=row["digest_time"], timezone=row["timezone"], active=row["active"], created_at=row["created_at"],
    )


def subscribe(
    recipient: str,
    regions: str | list[str] = "*",
    min_level: str = "yellow",
    mode: str = "immediate",
    digest_time: str | None = None,
    tz: str | None = None,
    *,
    settings: Settings | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    now: datetime | None = None,
) -> Subscription:
    """Add an active subscription; an identical active one is returned instead of duplicated."""
    recipient, items, digest_time, tz = validate(recipient, regions, min_level, mode, digest_time, tz)
    if mode == "immediate":
        digest_time = tz = None
    key = "|".join([recipient.lower(), ",".join(items), min_level, mode, digest_time or "", tz or ""])
    sub_id = "sub-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    with session(settings, con=con) as con:
        existing = _rows(con, "select * from subscriptions where subscription_id = ? and active", [sub_id])
        if existing:
            return _from_row(existing[0])
        now = now or datetime.now(timezone.utc)
        con.execute(
            "insert into subscriptions (subscription_id, recipient, regions, min_level, mode, digest_time, timezone,"
            " active, created_at) values (?, ?, ?, ?, ?, ?, ?, true, ?)",
            [sub_id, recipient, ",".join(items), min_level, mode, digest_time, tz, now],
        )
        log.info("subscription added", subscription_id=sub_id, mode=mode, regions=len(items), min_level=min_level)
        return _from_row(_rows(con, "select * from subscriptions where subscription_id = ? and active", [sub_id])[0])


def unsubscribe(recipient: str, subscription_id: str | None = None, *, settings: Settings | None = None,
                con: duckdb.DuckDBPyConnection | None = None) -> int:
    """Deactivate a recipient's subscriptions (or one of them); returns how many were active."""
    with session(settings, con=con) as con:
        where, params = "lower(recipient) = lower(?) and active", [recipient.strip()]
        if subscription_id:
            where += " and subscription_id = ?"
            params.append(subscription_id)
        n = con.execute(f"select count(*) from subscriptions where {where}", params).fetchone()[0]
        if n:
            con.execute(f"update subscriptions set active = false where {where}", params)
        log.info("subscriptions deactivated", count=n)
        return n


def active_subscriptions(con: duckdb.DuckDBPyConnection, mode: str | None = None) -> list[Subscription]:
    sql, params = "select * from subscriptions where active", []
    if mode:
        sql += " and mode = ?"
        params.append(mode)
    return [_from_row(r) for r in _rows(con, sql + " order by created_at, subscription_id", params)]
