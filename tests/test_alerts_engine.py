"""Alert engine on the real warehouse: levels from detectors and forecasts, abstention on thin data."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import yaml

from alerts import outbox
from alerts.engine import run_once
from alerts.subscriptions import subscribe
from tests.alerts_data import baseline_counts, seed_affect, seed_weekly

UTC = timezone.utc
NOW = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
LAST = date(2026, 2, 22)  # newest weekly period 2026-02-22 .. 2026-02-28


def _alerts(con, signal):
    cur = con.execute("select * from alerts where signal = ? order by region_id", [signal])
    cols = [d[0] for d in cur.description]
    return {r[1]: dict(zip(cols, r)) for r in cur.fetchall()}


def test_affect_abstains_when_device_coverage_is_too_low(warehouse, settings):
    seed_affect(warehouse, "06", NOW, 35, devices=4, spike_distress=0.5, seed=1)  # real rise, 4 devices
    seed_affect(warehouse, "36", NOW, 35, devices=4, spike_devices=2, spike_distress=0.5, seed=2)  # same rise, 2 devices
    seed_affect(warehouse, "48", NOW, 35, devices=4, seed=3)  # nothing happens
    # a new on-device model shifts the scores: never an alert by itself
    seed_affect(warehouse, "12", NOW - timedelta(days=1), 34, devices=4, seed=4)
    seed_affect(warehouse, "12", NOW, 1, devices=4, spike_distress=0.45, model_version="m2", seed=5)
    subscribe("epi@health.example", "*", "yellow", "immediate", con=warehouse, now=NOW - timedelta(days=1))

    out = run_once(settings, now=NOW, con=warehouse)
    assert out["signals"]["affect_distress"] == {"regions": 4, "red": 1, "yellow": 0, "insufficient_data": 2}
    a = _alerts(warehouse, "affect_distress")
    assert a["06"]["level"] == "red" and a["06"]["detectors"] == "affect" and a["06"]["p_value"] < 0.001
    assert a["36"]["level"] == "insufficient_data" and a["36"]["reason"] == "too_few_devices"
    assert a["36"]["statistic"] is None and a["36"]["observed"] is None  # no number from a 2-device cell
    ev36 = json.loads(a["36"]["evidence"])
    assert ev36["cell"]["n_devices"] == 2 and ev36["series"]["observed"][-1] is None  # suppressed in the sparkline
    assert a["12"]["level"] == "insufficient_data" and a["12"]["reason"] == "model_version_change"
    assert "48" not in a  # quiet regions leave no record
    assert all(x["provisional"] for x in a.values())

    queued = outbox.queue_immediate(warehouse, settings, NOW)
    assert queued == 1
    assert warehouse.execute("select alert_ids from email_outbox").fetchone()[0] == a["06"]["alert_id"]


def test_short_or_stale_history_abstains_and_old_data_is_not_provisional(warehouse, settings):
    seed_weekly(warehouse, "06", baseline_counts(40, 30, seed=1), LAST, report_lag_days=1)
    seed_weekly(warehouse, "36", [30, 31, 29, 200], LAST, report_lag_days=1)  # 4 weeks: too short to judge
    seed_weekly(warehouse, "48", baseline_counts(30, 30, seed=2), LAST - timedelta(days=28), report_lag_days=1)
    # 12: the first report of the newest week is a spike (a data error); a revision on 2026-03-05 fixes it
    counts12 = baseline_counts(40, 30, seed=3)
    seed_weekly(warehouse, "12", [*counts12[:-1], 400], LAST, report_lag_days=1)
    seed_weekly(warehouse, "12", [counts12[-1]], LAST, reported_at=datetime(2026, 3, 5, tzinfo=UTC))
    run_once(settings, now=NOW, con=warehouse)
    a = _alerts(warehouse, "flu_admissions")
    assert a["12"]["level"] == "yellow" and a["12"]["observed"] == 400  # what was known on 2026-03-03 (EWMA only:
    # < 1 year of history leaves Farrington without a baseline, and red needs two detectors)
    assert a["36"]["level"] == "insufficient_data" and a["36"]["reason"] == "short_history: 4 periods < min_history 10"
    assert a["48"]["level"] == "insufficient_data" and a["48"]["reason"].startswith("stale_data: last period 2026-01-25")
    assert "06" not in a or a["06"]["level"] in ("red", "yellow")
    # provisional: data ending within provisional_days (21) of today
    assert a["36"]["provisional"] is True
    later = run_once(settings, now=NOW + timedelta(days=60), con=warehouse)
    assert later["signals"]["flu_admissions"]["regions"] == 4
    # the revision took the alarm away: the alert is withdrawn (resolved), with an event saying why
    assert warehouse.execute("select status from alerts where region_id = '12'").fetchone()[0] == "resolved"
    assert warehouse.execute("select event from alert_events where alert_id = ? order by event_at",
                             [a["12"]["alert_id"]]).fetchall() == [("opened",), ("withdrawn",)]
    assert warehouse.execute("select provisional from alerts where region_id = '36'").fetchone()[0] is False


def test_red_needs_detector_and_forecast_exceedance_as_the_rule_says(warehouse, settings, tmp_path):
    rules = {"version": 1, "signals": {"ili": {
        "source": "symptom_reports", "syndrome": "ili", "frequency": "weekly", "min_history": 10,
        "detectors": [{"name": "ewma", "method": "ewma", "allow_off_frequency": True},
                      {"name": "fc", "method": "forecast-exceedance", "target": "wk inc ili", "horizon": 1,
                       "threshold_quantile": 0.9}],
        "levels": {"red": {"require": 2, "when": [{"detector": "ewma", "p_below": 0.05},
                                                  {"detector": "fc", "probability_above": 0.8}]},
                   "yellow": {"when": [{"detector": "ewma", "p_below": 0.05}]}}}}}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    s = settings.model_copy(update={"alerts": settings.alerts.model_copy(update={"rules_file": str(path)})})
    counts = baseline_counts(40, 50, seed=7)
    counts[-1] = 120
    for region in ("06", "36"):
        seed_weekly(warehouse, region, counts, LAST, syndrome="ili", report_lag_days=1)
    levels = [0.01, 0.025, *np.round(np.arange(0.05, 0.951, 0.05), 2), 0.975, 0.99]
    thr = float(pd.Series(counts).quantile(0.9))
    rows = []
    for region, centre in (("06", thr * 2), ("36", thr * 0.5)):  # 06 is forecast far above its threshold, 36 below
        for lv in levels:
            rows.append((LAST + timedelta(days=6), 1, "wk inc ili", LAST + timedelta(days=13), region, "quantile", lv,
                         centre * (1 + 0.2 * (lv - 0.5)), "ensemble", NOW - timedelta(hours=2), "run-1"))
    # the same run's baseline model for 06 says "below threshold": the rule prefers the ensemble
    rows += [(r[0], 1, r[2], r[3], "06", r[5], r[6], r[7] * 0.1, "baseline", r[9], "run-1") for r in rows[:23]]
    # a forecast created after `now` is not known yet and must be ignored
    rows += [(r[0], 1, r[2], r[3], "36", r[5], r[6], r[7] * 10, "ensemble", NOW + timedelta(hours=5), "run-2") for r in rows[23:46]]
    warehouse.executemany("insert into forecasts values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    out = run_once(s, now=NOW, con=warehouse)
    assert out["signals"] == {"ili": {"regions": 2, "red": 1, "yellow": 1, "insufficient_data": 0}}
    a = _alerts(warehouse, "ili")
    assert a["06"]["level"] == "red" and a["06"]["detectors"] == "ewma,fc" and a["06"]["probability"] > 0.99
    assert a["36"]["level"] == "yellow" and a["36"]["detectors"] == "ewma" and a["36"]["probability"] < 0.01
    ev = json.loads(a["06"]["evidence"])
    assert ev["detectors"]["fc"]["model"] == "ensemble"
    assert ev["detectors"]["fc"]["threshold"] == thr and ev["detectors"]["fc"]["reference_date"] == str(LAST + timedelta(days=6))
    assert ev["detectors"]["ewma"]["p_value"] == a["06"]["p_value"] < 0.05
    assert ev["series"]["observed"][-1] == 120 and len(ev["series"]["dates"]) == 26
