"""Alert lifecycle: one alert per region + signal episode, open -> ongoing -> resolved.

The engine hands over one ``Decision`` per region and signal (the level the rules give the
newest data period, with its evidence). ``apply`` turns the decisions into alert rows and an
append-only history in ``alert_events``:

- no active alert + red/yellow           -> ``opened`` (notify, unless a resolved alert of the
                                            same or higher level was notified within cooldown)
- active + higher level                  -> ``escalated`` (notify at once, cooldown ignored)
- active + newer period still alarming   -> ``new_evidence`` (notify only once cooldown passed)
- active + lower, still alarming level   -> ``deescalated`` (no notification)
- active + ``resolve_after`` quiet periods -> ``resolved``
- active + the same period, revised, no longer alarming -> ``withdrawn`` (status resolved)
- data too thin                          -> ``insufficient_data`` alert (never notified) or, on
                                            an active red/yellow alert, an ``abstained`` event
Re-running on the same data changes nothing (no duplicate events, no duplicate notifications).
Events with ``notify`` in their detail are what the outbox turns into immediate emails.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import duckdb

from affectwatch.logs import get_logger
from affectwatch.settings import Settings
from affectwatch.warehouse import session, transaction
from affectwatch.warehouse import rows as _rows
from alerts.rules import LEVEL_RANK

log = get_logger(__name__)

NOTIFY_EVENTS = ("opened", "escalated", "new_evidence")
ACK_LABELS = ("true_alarm", "false_alarm")


@dataclass
class Decision:
    """The level of one region + signal for its newest data period, with the evidence."""

    region_id: str
    signal: str
    level: str | None  # 'red' | 'yellow' | 'insufficient_data' | None (quiet)
    rule: str
    data_start: date | None
    data_end: date | None
    provisional: bool = False
    detectors: list[str] = field(default_factory=list)  # detectors whose condition held
    statistic: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    probability: float | None = None
    observed: float | None = None
    expected: float | None = None
    reason: str | None = None  # abstention reason when level == 'insufficient_data'
    quiet_periods: int = 0  # consecutive trailing periods without red/yellow
    resolve_after: int = 2
    cooldown_hours: float = 72.0
    evidence: dict = field(default_factory=dict)


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _event(con, alert_id: str, event: str, level: str | None, now: datetime, **detail) -> None:
    con.execute(
        "insert into alert_events (alert_id, event, level, detail, event_at) values (?, ?, ?, ?, ?)",
        [alert_id, event, level, json.dumps(detail, default=str, sort_keys=True), now],
    )


def _evidence_params(d: Decision) -> list:
    return [
        d.level, d.rule, ",".join(d.detectors) or None, d.statistic, d.threshold, d.p_value, d.probability,
        d.observed, d.expected, d.data_start, d.data_end, d.provisional,
        json.dumps(d.evidence, default=str, sort_keys=True), d.reason,
    ]


def _insert_alert(con, alert_id: str, d: Decision, now: datetime, notified: bool) -> None:
    con.execute(
        """insert into alerts (alert_id, region_id, signal, level, status, rule, detectors, statistic, threshold,
               p_value, probability, observed, expected, data_start, data_end, provisional, evidence, reason,
               first_seen, last_updated, resolved_at, created_at, notified_level, last_notified_at)
           values (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?)""",
        [alert_id, d.region_id, d.signal, *_evidence_params(d), now, now, now,
         d.level if notified else None, now if notified else None],
    )


def _update_alert(con, alert_id: str, d: Decision, now: datetime, status: str, notified: bool) -> None:
    con.execute(
        """update alerts set level = ?, rule = ?, detectors = ?, statistic = ?, threshold = ?, p_value = ?,
               probability = ?, observed = ?, expected = ?, data_start = ?, data_end = ?, provisional = ?,
               evidence = ?, reason = ?, status = ?, last_updated = ?,
               notified_level = case when ? then ? else notified_level end,
               last_notified_at = case when ? then ? else last_notified_at end
           where alert_id = ?""",
        [*_evidence_params(d), status, now, notified, d.level, notified, now, alert_id],
    )


class _Applier:
    """Applies decisions inside one warehouse transaction; collects a summary."""

    def __init__(self, con, now: datetime):
        self.con, self.now = con, now
        self.summary = {"opened": 0, "escalated": 0, "new_evidence": 0, "deescalated": 0, "resolved": 0,
                        "abstained": 0, "unchanged": 0, "notifications": []}
        self.active = {(a["region_id"], a["signal"]): a for a in _rows(
            con, "select * from alerts where status in ('open', 'ongoing')")}
        self.last_resolved = {}
        for a in _rows(con, "select * from alerts where status = 'resolved' order by resolved_at"):
            self.last_resolved[(a["region_id"], a["signal"])] = a

    def notify(self, alert_id: str, event: str, d: Decision, **detail) -> None:
        _event(self.con, alert_id, event, d.level, self.now, notify=True, data_end=d.data_end, **detail)
        self.summary["notifications"].append({"alert_id": alert_id, "event": event, "level": d.level})

    def apply(self, d: Decision) -> None:
        key = (d.region_id, d.signal)
        active = self.active.get(key)
        if d.level in ("red", "yellow"):
            self._alarm(d, active)
        elif d.level == "insufficient_data":
            self._abstain(d, active)
        elif active is not None:
            self._quiet(d, active)

    def _cooldown_over(self, last_notified_at, cooldown_hours: float) -> bool:
        last = _aware(last_notified_at)
        return last is None or self.now - last >= timedelta(hours=cooldown_hours)

    def _alarm(self, d: Decision, active: dict | None) -> None:
        key = (d.region_id, d.signal)
        if active is None:
            alert_id = f"{d.region_id}|{d.signal}|{d.data_end}"
            prev = self.last_resolved.get(key)
            suppressed = (
                prev is not None
                and not self._cooldown_over(prev["last_notified_at"], d.cooldown_hours)
                and LEVEL_RANK[d.level] <= LEVEL_RANK[prev["notified_level"]]
            )
            _insert_alert(self.con, alert_id, d, self.now, notified=not suppressed)
            if suppressed:
                _event(self.con, alert_id, "opened", d.level, self.now, notify=False,
                       detail=f"within cooldown of {prev['alert_id']}; recipients not notified again")
            else:
                self.notify(alert_id, "opened", d)
            self.summary["opened"] += 1
            return
        alert_id = active["alert_id"]
        notified_rank = LEVEL_RANK[active["notified_level"]]
        newer = d.data_end is not None and (active["data_end"] is None or d.data_end > active["data_end"])
        if LEVEL_RANK[d.level] > max(notified_rank, LEVEL_RANK[active["level"]]):
            _update_alert(self.con, alert_id, d, self.now, "ongoing", notified=True)
            self.notify(alert_id, "escalated", d, previous_level=active["level"])
            self.summary["escalated"] += 1
        elif newer:
            lower = LEVEL_RANK[d.level] < LEVEL_RANK[active["level"]]
            notify = not lower and self._cooldown_over(active["last_notified_at"], d.cooldown_hours)
            _update_alert(self.con, alert_id, d, self.now, "ongoing", notified=notify)
            if lower:
                _event(self.con, alert_id, "deescalated", d.level, self.now, notify=False,
                       previous_level=active["level"], data_end=d.data_end)
                self.summary["deescalated"] += 1
            elif notify:
                self.notify(alert_id, "new_evidence", d)
                self.summary["new_evidence"] += 1
            else:
                _event(self.con, alert_id, "new_evidence", d.level, self.now, notify=False,
                       data_end=d.data_end, detail="within cooldown; recipients not notified again")
                self.summary["new_evidence"] += 1
        else:
            if active["provisional"] != d.provisional:  # the same period matured (or was revised): refresh quietly
                _update_alert(self.con, alert_id, d, self.now, active["status"], notified=False)
            self.summary["unchanged"] += 1

    def _abstain(self, d: Decision, active: dict | None) -> None:
        if active is None:
            alert_id = f"{d.region_id}|{d.signal}|{d.data_end}"
            _insert_alert(self.con, alert_id, d, self.now, notified=False)
            _event(self.con, alert_id, "abstained", d.level, self.now, notify=False, reason=d.reason)
            self.summary["abstained"] += 1
        elif active["level"] == "insufficient_data":
            if active["reason"] != d.reason or active["data_end"] != d.data_end or active["provisional"] != d.provisional:
                _update_alert(self.con, active["alert_id"], d, self.now, "ongoing", notified=False)
                if active["reason"] != d.reason:
                    _event(self.con, active["alert_id"], "abstained", d.level, self.now, notify=False, reason=d.reason)
            self.summary["abstained"] += 1
        else:
            # An active red/yellow alert whose newest data is too thin: keep it, say so once.
            last = _rows(self.con, "select event, detail from alert_events where alert_id = ? order by event_at desc limit 1",
                         [active["alert_id"]])
            if not last or last[0]["event"] != "abstained" or json.loads(last[0]["detail"]).get("reason") != d.reason:
                _event(self.con, active["alert_id"], "abstained", active["level"], self.now, notify=False,
                       reason=d.reason, detail="newest data too thin to judge; alert kept at its level")
            self.summary["abstained"] += 1

    def _quiet(self, d: Decision, active: dict) -> None:
        enough_quiet = d.quiet_periods >= d.resolve_after or active["level"] == "insufficient_data"
        newer = d.data_end is not None and (active["data_end"] is None or d.data_end > active["data_end"])
        same_period = d.data_end is not None and d.data_end == active["data_end"]
        if (enough_quiet and newer) or (same_period and active["level"] in ("red", "yellow")):
            # quiet long enough, or the very period that alarmed was revised and no longer alarms
            event = "resolved" if newer else "withdrawn"
            self.con.execute(
                "update alerts set status = 'resolved', resolved_at = ?, last_updated = ? where alert_id = ?",
                [self.now, self.now, active["alert_id"]],
            )
            _event(self.con, active["alert_id"], event, active["level"], self.now, notify=False,
                   quiet_periods=d.quiet_periods, data_end=d.data_end,
                   **({} if newer else {"detail": "revised data for this period no longer alarm"}))
            self.summary["resolved"] += 1
        else:
            self.summary["unchanged"] += 1


def apply(con: duckdb.DuckDBPyConnection, decisions: list[Decision], now: datetime | None = None) -> dict:
    """Apply the decisions of one detection pass in one transaction; return counts and notifications."""
    now = _now(now)

    def work() -> _Applier:
        applier = _Applier(con, now)
        for d in decisions:
            applier.apply(d)
        return applier

    s = transaction(con, work, what="alert lifecycle").summary
    log.info("alert lifecycle applied", decisions=len(decisions), **{k: v for k, v in s.items() if k != "notifications"},
             notifications=len(s["notifications"]))
    return s


def acknowledge(
    alert_id: str,
    by: str,
    note: str | None = None,
    label: str | None = None,
    *,
    settings: Settings | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    now: datetime | None = None,
) -> dict:
    """Record who acknowledged an alert, when, with a note and an optional true/false-alarm label."""
    if not by or not by.strip():
        raise ValueError("acknowledge: `by` (who acknowledges) must not be empty")
    if label is not None and label not in ACK_LABELS:
        raise ValueError(f"acknowledge: label must be one of {ACK_LABELS} or empty, got {label!r}")
    now = _now(now)
    with session(settings, con=con) as con:
        row = con.execute("select level from alerts where alert_id = ?", [alert_id]).fetchone()
        if row is None:
            raise KeyError(f"no alert with alert_id {alert_id!r}")

        def work() -> None:
            con.execute(
                "insert into alert_acks (alert_id, acknowledged_by, acknowledged_at, note, label) values (?, ?, ?, ?, ?)",
                [alert_id, by.strip(), now, note, label],
            )
            _event(con, alert_id, "acknowledged", row[0], now, notify=False, by=by.strip(), label=label)

        transaction(con, work, what="alert acknowledgement")
        log.info("alert acknowledged", alert_id=alert_id, by=by.strip(), label=label)
        return {"alert_id": alert_id, "acknowledged_by": by.strip(), "acknowledged_at": now, "note": note, "label": label}
