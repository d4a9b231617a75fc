"""Alert lifecycle on the real warehouse: open -> ongoing -> resolved, cooldown, escalation, acknowledgement."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from alerts import lifecycle
from alerts.lifecycle import acknowledge
from tests.alerts_data import decision

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
W1, W2, W3, W4, W5 = (date(2026, 2, 28) + timedelta(days=7 * i) for i in range(5))


def _events(con, alert_id=None):
    sql = "select alert_id, event, level, detail from alert_events"
    rows = con.execute(sql + (" where alert_id = ?" if alert_id else "") + " order by event_at, event",
                       [alert_id] if alert_id else []).fetchall()
    return [(a, e, lvl, json.loads(d)) for a, e, lvl, d in rows]


def _notified(summary):
    return [(n["event"], n["level"]) for n in summary["notifications"]]


def test_open_ongoing_escalate_cooldown_resolve(warehouse):
    con = warehouse
    # week 1: yellow opens an alert and notifies
    s = lifecycle.apply(con, [decision("06", "yellow", W1)], T0)
    assert _notified(s) == [("opened", "yellow")]
    aid = "06|flu_admissions|2026-02-28"
    assert con.execute("select status, level, notified_level from alerts").fetchall() == [("open", "yellow", "yellow")]
    # same data again (the hourly detection re-runs): nothing changes, no new event
    s = lifecycle.apply(con, [decision("06", "yellow", W1)], T0 + timedelta(hours=1))
    assert s["unchanged"] == 1 and not s["notifications"]
    assert len(_events(con)) == 1
    # week 2, still yellow, within the 72 h cooldown of the last notification: new evidence, not notified
    s = lifecycle.apply(con, [decision("06", "yellow", W2)], T0 + timedelta(hours=48))
    assert s["new_evidence"] == 1 and not s["notifications"]
    assert con.execute("select status, data_end from alerts").fetchone() == ("ongoing", W2)
    # escalation to red notifies at once, cooldown or not
    s = lifecycle.apply(con, [decision("06", "red", W2)], T0 + timedelta(hours=50))
    assert _notified(s) == [("escalated", "red")]
    # week 3 red after the cooldown passed: new evidence is notified again
    s = lifecycle.apply(con, [decision("06", "red", W3)], T0 + timedelta(hours=50 + 73))
    assert _notified(s) == [("new_evidence", "red")]
    # week 4 drops to yellow: de-escalation, recorded, not notified
    s = lifecycle.apply(con, [decision("06", "yellow", W4)], T0 + timedelta(days=14))
    assert s["deescalated"] == 1 and not s["notifications"]
    # one quiet week is not enough (resolve_after = 2) ...
    s = lifecycle.apply(con, [decision("06", None, W5, quiet=1)], T0 + timedelta(days=21))
    assert s["resolved"] == 0
    # ... two are
    s = lifecycle.apply(con, [decision("06", None, W5 + timedelta(days=7), quiet=2)], T0 + timedelta(days=28))
    assert s["resolved"] == 1
    status, resolved_at = con.execute("select status, resolved_at from alerts").fetchone()
    assert status == "resolved" and resolved_at == T0 + timedelta(days=28)
    assert [e[1] for e in _events(con, aid)] == ["opened", "new_evidence", "escalated", "new_evidence", "deescalated",
                                                  "resolved"]
    assert [e[3]["notify"] for e in _events(con, aid)] == [True, False, True, True, False, False]


def test_cooldown_after_resolution_blocks_same_level_not_escalation(warehouse):
    con = warehouse
    lifecycle.apply(con, [decision("36", "yellow", W1)], T0)
    lifecycle.apply(con, [decision("36", None, W2, quiet=2)], T0 + timedelta(hours=10))
    # a new yellow episode 20 h after the last notification: opened, but recipients are not notified again
    s = lifecycle.apply(con, [decision("36", "yellow", W3)], T0 + timedelta(hours=20))
    assert s["opened"] == 1 and not s["notifications"]
    second = "36|flu_admissions|" + str(W3)
    ev = _events(con, second)
    assert ev[0][1] == "opened" and ev[0][3]["notify"] is False and "cooldown" in ev[0][3]["detail"]
    # while that alert is active, red is an escalation over what recipients were told: notified
    s = lifecycle.apply(con, [decision("36", "red", W3)], T0 + timedelta(hours=21))
    assert _notified(s) == [("escalated", "red")]
    # a red episode right after a resolved yellow one is notified at once (higher than what was notified)
    lifecycle.apply(con, [decision("48", "yellow", W1)], T0)
    lifecycle.apply(con, [decision("48", None, W2, quiet=2)], T0 + timedelta(hours=1))
    s = lifecycle.apply(con, [decision("48", "red", W3)], T0 + timedelta(hours=2))
    assert _notified(s) == [("opened", "red")]
    # after the cooldown a same-level episode is notified normally
    lifecycle.apply(con, [decision("12", "yellow", W1)], T0)
    lifecycle.apply(con, [decision("12", None, W2, quiet=2)], T0 + timedelta(hours=1))
    s = lifecycle.apply(con, [decision("12", "yellow", W3)], T0 + timedelta(hours=80))
    assert _notified(s) == [("opened", "yellow")]


def test_insufficient_data_is_recorded_never_notified_and_does_not_resolve_a_real_alert(warehouse):
    con = warehouse
    thin = decision("53", "insufficient_data", W1, reason="too_few_devices", detectors=[])
    s = lifecycle.apply(con, [thin], T0)
    assert s["abstained"] == 1 and not s["notifications"]
    assert con.execute("select level, status, reason from alerts").fetchall() == [("insufficient_data", "open", "too_few_devices")]
    # data recover and alarm: escalation from insufficient data to yellow is notified
    s = lifecycle.apply(con, [decision("53", "yellow", W2)], T0 + timedelta(days=7))
    assert _notified(s) == [("escalated", "yellow")]
    # thin data again while the yellow alert is active: kept at yellow, abstention noted once
    lifecycle.apply(con, [decision("53", "insufficient_data", W3, reason="low_quality")], T0 + timedelta(days=14))
    lifecycle.apply(con, [decision("53", "insufficient_data", W3, reason="low_quality")], T0 + timedelta(days=14, hours=1))
    assert con.execute("select level, status from alerts").fetchone() == ("yellow", "ongoing")
    assert [e[1] for e in _events(con)].count("abstained") == 2  # the first abstention + this one, not repeated
    # an insufficient-data record resolves as soon as the data are good and quiet
    lifecycle.apply(con, [decision("54", "insufficient_data", W1, reason="short_history: 3 periods < min_history 10")], T0)
    s = lifecycle.apply(con, [decision("54", None, W2, quiet=1)], T0 + timedelta(days=7))
    assert s["resolved"] == 1


def test_acknowledgement_persists_across_connections(warehouse, settings):
    from affectwatch.warehouse import connect

    lifecycle.apply(warehouse, [decision("06", "red", W1)], T0)
    aid = "06|flu_admissions|2026-02-28"
    acknowledge(aid, "Dr. Rivera", "called the county; ED confirms surge", "true_alarm", con=warehouse, now=T0)
    other = connect(settings)
    try:
        assert other.execute("select alert_id, acknowledged_by, acknowledged_at, note, label from alert_acks").fetchall() == [
            (aid, "Dr. Rivera", T0, "called the county; ED confirms surge", "true_alarm")]
        ev = other.execute("select event, detail from alert_events where event = 'acknowledged'").fetchone()
        assert ev[0] == "acknowledged" and json.loads(ev[1])["by"] == "Dr. Rivera"
    finally:
        other.close()
    with pytest.raises(KeyError, match="no alert with alert_id 'nope'"):
        acknowledge("nope", "x", con=warehouse)
    with pytest.raises(ValueError, match="label must be one of"):
        acknowledge(aid, "x", label="maybe", con=warehouse)
    with pytest.raises(ValueError, match="must not be empty"):
        acknowledge(aid, "  ", con=warehouse)
