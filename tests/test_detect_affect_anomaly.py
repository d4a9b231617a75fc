"""Affect anomaly detector: alarms on real shifts, abstains with reasons, ignores model-version changes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyst import affect_cells
from affectwatch.settings import Settings
from analytics.affect_anomaly import OUTPUT_COLUMNS, affect_anomalies

END = pd.Timestamp("2026-01-01", tz="UTC")


def region_windows(region, n_devices=5, days=35, shift=0.0, shift_devices=None, version_from=None,
                   new_version_devices=None, low_quality_last_day=False, seed=0):
    """Hourly windows for one region; the last 24 hours can be shifted / switched to model v2."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(END - pd.Timedelta(days=days), END - pd.Timedelta(hours=1), freq="h")
    dev = np.repeat(np.arange(n_devices), hours.size)
    ws = hours[np.tile(np.arange(hours.size), n_devices)]
    hod = ws.hour
    distress = 0.2 + 0.05 * np.sin(2 * np.pi * hod / 24) + rng.normal(0, 0.03, ws.size)
    last_day = ws >= END - pd.Timedelta(hours=24)
    shift_devices = range(n_devices) if shift_devices is None else shift_devices
    distress = distress + shift * (last_day & np.isin(dev, list(shift_devices)))
    version = np.full(ws.size, "v1", dtype=object)
    if version_from is not None:
        switched = ws >= version_from
        if new_version_devices is not None:
            switched &= np.isin(dev, list(new_version_devices))
        version[switched] = "v2"
    quality = np.where(last_day & low_quality_last_day, 0.1, 0.9)
    return pd.DataFrame({
        "device_id": [f"{region}-dev{d:02d}-aaaaaaaa" for d in dev],
        "region_id": region,
        "site_type": "ed",
        "window_start": ws,
        "window_end": ws + pd.Timedelta(hours=1),
        "n_observations": 30,
        "n_abstained": 3,
        "distress_share": np.clip(distress, 0, 1),
        "confidence_mean": 0.8,
        "quality_pose_stability": quality,
        "quality_lighting": quality,
        "quality_snr_db": np.nan,
        "model_version": version,
    })


@pytest.fixture(scope="module")
def verdicts(request) -> pd.DataFrame:
    last_day = END - pd.Timedelta(hours=24)
    parts = [
        region_windows("A", shift=0.08, seed=1),                                   # real rise
        region_windows("B", seed=2),                                               # stable
        region_windows("C", shift=0.08, version_from=last_day, seed=3),           # new model + shift
        region_windows("D", n_devices=2, shift=0.3, seed=4),                       # too few devices
        region_windows("E", shift=0.3, low_quality_last_day=True, seed=5),        # poor capture
        region_windows("F", shift=0.08, shift_devices=[3, 4], version_from=last_day,
                       new_version_devices=[3, 4], seed=6),                        # partial rollout
        region_windows("G", shift=0.08, version_from=END - pd.Timedelta(days=10), seed=7),  # re-baselined
        region_windows("H", days=3, shift=0.3, seed=8),                            # short history
    ]
    out = affect_anomalies(pd.concat(parts, ignore_index=True), min_devices=3, min_observations=11, min_quality=0.3)
    return out.set_index("region_id")


def test_output_columns_and_period(verdicts):
    assert list(verdicts.reset_index().columns) == list(OUTPUT_COLUMNS)
    assert (verdicts["period_end"] == END).all()
    assert (verdicts["period_start"] == END - pd.Timedelta(hours=24)).all()


def test_real_shift_alarms(verdicts):
    a = verdicts.loc["A"]
    assert a["alarm"] and a["level"] == "red" and a["reason"] is None
    assert a["observed"] == pytest.approx(a["expected"] + 0.08, abs=0.02)
    assert a["observed"] > a["threshold"] and a["p_value"] < 0.01


def test_stable_region_does_not_alarm(verdicts):
    b = verdicts.loc["B"]
    assert not b["alarm"] and b["reason"] is None and b["p_value"] > 0.05
    assert b["baseline_periods"] == 28


def test_model_version_change_never_alarms_by_itself(verdicts):
    c = verdicts.loc["C"]
    assert not c["alarm"] and c["reason"] == "model_version_change" and c["model_version"] == "v2"
    # partial rollout: the shifted devices run v2; the comparison uses the v1 majority only
    f = verdicts.loc["F"]
    assert f["model_version"] == "v1" and not f["alarm"] and f["reason"] is None
    # once the new version has its own baseline (10 days), a real rise alarms again
    g = verdicts.loc["G"]
    assert g["model_version"] == "v2" and g["alarm"] and g["baseline_periods"] == 9


def test_abstains_with_reasons(verdicts):
    d = verdicts.loc["D"]
    assert d["reason"] == "too_few_devices" and not d["alarm"] and d["n_devices"] == 2
    assert np.isnan(d["observed"]) and np.isnan(d["expected"])  # suppressed, not shown
    e = verdicts.loc["E"]
    assert e["reason"] == "low_quality" and not e["alarm"] and e["quality"] == pytest.approx(0.1)
    h = verdicts.loc["H"]
    assert h["reason"] == "insufficient_baseline" and not h["alarm"]


def test_too_few_observations_and_no_data():
    w = region_windows("X", days=10)
    w["n_observations"] = 3  # below the configured minimum
    out = affect_anomalies(w, min_observations=500).set_index("region_id")
    assert out.loc["X", "reason"] == "too_few_observations"
    old = region_windows("Y", days=10)
    old = old[old["window_start"] < END - pd.Timedelta(days=2)]
    out = affect_anomalies(pd.concat([old, region_windows("Z", days=10)]), at=END).set_index("region_id")
    assert out.loc["Y", "reason"] == "no_data" and not out.loc["Y", "alarm"]


def test_minimums_come_from_settings(settings):
    w = region_windows("A", shift=0.08, seed=1)
    strict = settings.model_copy(update={"privacy": settings.privacy.model_copy(update={"min_devices": 6})})
    assert affect_anomalies(w, settings=strict)["reason"].iloc[0] == "too_few_devices"
    assert affect_anomalies(w, settings=settings)["alarm"].iloc[0]


def test_window_quality_and_validation():
    # capture quality of the one cell definition: mean of the reported indicators, 1 when none
    frame = region_windows("Q", n_devices=1, days=1).head(3).assign(
        region_id=["q1", "q2", "q3"], quality_pose_stability=[0.8, np.nan, np.nan],
        quality_lighting=[0.4, np.nan, np.nan], quality_snr_db=[np.nan, 10.0, np.nan])
    cells = affect_cells.from_windows(frame, "hour", Settings(privacy={"min_devices": 1}))
    assert cells.set_index("region_id")["quality"].to_dict() == pytest.approx({"q1": 0.6, "q2": 0.5, "q3": 1.0})
    with pytest.raises(ValueError, match="model_version"):
        affect_anomalies(region_windows("A", days=2).drop(columns=["model_version"]))
    with pytest.raises(ValueError, match="unknown signal"):
        affect_anomalies(region_windows("A", days=2), signal="joy")
