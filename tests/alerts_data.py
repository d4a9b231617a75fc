"""Seed the warehouse for alert tests: symptom reports and affect windows inserted directly."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

UTC = timezone.utc


def weekly_dates(n: int, last_period_start: date) -> list[date]:
    return [last_period_start - timedelta(days=7 * (n - 1 - i)) for i in range(n)]


def seed_weekly(con, region: str, counts, last_period_start: date, syndrome: str = "flu_admissions",
                report_lag_days: int = 4, reported_at: datetime | None = None) -> None:
    """One weekly report per count; the newest period is the one starting ``last_period_start``."""
    rows = []
    for ps, c in zip(weekly_dates(len(counts), last_period_start), counts):
        rep = reported_at or datetime.combine(ps + timedelta(days=6 + report_lag_days), datetime.min.time(), UTC)
        rows.append((region, syndrome, ps, ps + timedelta(days=6), int(c), None, "test", rep, 1, "file:test",
                     None, None, datetime.now(UTC)))
    cols = ["region_id", "syndrome", "period_start", "period_end", "count", "denominator", "source", "reported_at",
            "schema_version", "origin", "kafka_partition", "kafka_offset", "ingested_at"]
    df = pd.DataFrame(rows, columns=cols).astype({"denominator": "Int64", "kafka_partition": "Int32", "kafka_offset": "Int64"})
    con.register("_seed_symptoms", df)
    try:
        con.execute(f"insert into symptom_reports ({', '.join(cols)}) select {', '.join(cols)} from _seed_symptoms")
    finally:
        con.unregister("_seed_symptoms")


def baseline_counts(n: int, mean: float = 40, seed: int = 0) -> list[int]:
    return list(np.random.default_rng(seed).poisson(mean, n))


def seed_affect(con, region: str, end: datetime, days: int, devices: int, spike_devices: int | None = None,
                spike_distress: float | None = None, spike_hours: int = 24, obs: int = 30,
                model_version: str = "m1", seed: int = 0) -> int:
    """Hourly windows per device for ``days`` days before ``end``. In the last ``spike_hours`` the
    distress share is ``spike_distress`` and only ``spike_devices`` devices report (if given)."""
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=days)
    hours = pd.date_range(start, end - timedelta(hours=1), freq="h", tz="UTC")
    recs = []
    for h in hours:
        in_spike = h >= end - timedelta(hours=spike_hours)
        n_dev = spike_devices if (in_spike and spike_devices is not None) else devices
        for d in range(n_dev):
            distress = spike_distress if (in_spike and spike_distress is not None) else 0.10 + rng.normal(0, 0.01)
            recs.append({
                "device_id": f"dev-{region}-{d:04d}", "region_id": region, "site_type": "ed",
                "window_start": h.to_pydatetime(), "window_end": (h + pd.Timedelta(hours=1)).to_pydatetime(),
                "n_observations": obs, "n_abstained": 2, "valence_mean": -0.1, "arousal_mean": 0.2,
                "valence_sd": 0.3, "arousal_sd": 0.3, "distress_share": float(np.clip(distress, 0, 1)),
                "confidence_mean": 0.8, "quality_pose_stability": 0.9, "quality_lighting": 0.8, "quality_snr_db": None,
                "modality": "face", "model_version": model_version, "dp_epsilon": None, "schema_version": 1,
                "simulated": True, "kafka_topic": None, "kafka_partition": None, "kafka_offset": None,
                "produced_at": None, "ingested_at": datetime.now(UTC),
            })
    df = pd.DataFrame(recs)
    con.register("_seed_affect", df)
    try:
        cols = ", ".join(df.columns)
        con.execute(f"insert into affect_windows ({cols}) select {cols} from _seed_affect")
    finally:
        con.unregister("_seed_affect")
    return len(df)


def decision(region: str = "06", level: str | None = "red", data_end: date = date(2026, 2, 28), signal: str = "flu_admissions",
             quiet: int = 0, cooldown_hours: float = 72, **kw):
    """A lifecycle Decision with realistic evidence (weekly series + per-detector numbers)."""
    from alerts.lifecycle import Decision

    dates = [str(data_end - timedelta(days=7 * (11 - i) + 6)) for i in range(12)]
    obs = [40.0, 42, 39, 41, 44, 38, 40, 43, 41, 39, 42, 95 if level == "red" else 60]
    ev = {"detectors": {"ewma": {"statistic": 6.2, "threshold": 52.3, "p_value": 0.0004, "expected": 41.0, "alarm": True,
                                 "reason": None},
                        "farrington": {"statistic": 3.1, "threshold": 58.0, "p_value": 0.002, "expected": 40.5,
                                       "alarm": True, "reason": None}},
          "series": {"dates": dates, "observed": obs, "threshold": [52.3] * 12}}
    base = dict(region_id=region, signal=signal, level=level, rule=signal, data_start=data_end - timedelta(days=6),
                data_end=data_end, provisional=True, detectors=["ewma", "farrington"] if level in ("red", "yellow") else [],
                statistic=6.2, threshold=52.3, p_value=0.0004, observed=obs[-1], expected=41.0, quiet_periods=quiet,
                resolve_after=2, cooldown_hours=cooldown_hours, evidence=ev)
    base.update(kw)
    return Decision(**base)
