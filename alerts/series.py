"""Series the alert engine runs detectors on, built from the warehouse as known at ``as_of``.

* Symptom series: the latest revision (max ``reported_at`` not after ``as_of``) of each
  region, syndrome and period, as counts or as percent of visits; one row per period, interior
  gaps filled explicitly (count 0 / previous percent) and counted, because the detectors need
  consecutive periods.
* Affect cells: per region and day, distinct devices, observations (scored + abstained), the
  confidence-weighted distress share and mean quality. Cells that fail the privacy rules keep
  their counts (for abstention) but lose their value (privacy rule 3).
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from affectwatch.privacy import suppression_code
from analytics.affect_anomaly import window_quality


def symptom_series(con, syndrome: str, frequency: str, measure: str, as_of: datetime) -> pd.DataFrame:
    """Columns: series (region_id), t, date (period start), period_end, observed, count, denominator,
    reported_at, revisions, filled (True for an explicitly filled gap)."""
    step = 7 if frequency == "weekly" else 1
    length_ok = "datediff('day', period_start, period_end) between 6 and 7" if step == 7 else "period_start = period_end"
    df = con.execute(f"""
        select region_id as series, period_start, period_end, count, denominator, reported_at,
               count(*) over (partition by region_id, period_start) as revisions
        from symptom_reports
        where syndrome = ? and reported_at <= ? and {length_ok}
        qualify row_number() over (partition by region_id, period_start
                                   order by reported_at desc, ingested_at desc) = 1
        order by region_id, period_start""", [syndrome, as_of]).df()
    if df.empty:
        return df.assign(t=[], date=[], observed=[], filled=[])
    df["date"] = pd.to_datetime(df["period_start"])
    if measure == "percent":
        denom = df["denominator"].astype(float)
        df["observed"] = np.where(denom > 0, 100.0 * df["count"].astype(float) / denom.where(denom > 0), np.nan)
    else:
        df["observed"] = df["count"].astype(float)
    days = (df["date"] - pd.Timestamp("1970-01-04")).dt.days  # a Sunday: MMWR weeks start on Sunday
    df["t"] = (days // step).astype(np.int64)
    out = []
    for region, g in df.groupby("series", sort=True):
        g = g.drop_duplicates("t", keep="last").set_index("t")
        full = g.reindex(np.arange(g.index.min(), g.index.max() + 1))
        filled = full["series"].isna() | full["observed"].isna()
        full["series"] = region
        full["filled"] = filled.to_numpy()
        t0, d0 = g.index.min(), g["date"].iloc[0]
        full["date"] = [d0 + pd.Timedelta(days=step * int(t - t0)) for t in full.index]
        full["period_end"] = full["period_end"].where(~filled, (full["date"] + pd.Timedelta(days=step - 1)).dt.date)
        full["revisions"] = full["revisions"].fillna(0)
        full["observed"] = full["observed"].fillna(0.0) if measure == "count" else full["observed"].ffill().fillna(0.0)
        full["period_end"] = pd.to_datetime(full["period_end"]).dt.date
        out.append(full.reset_index(names="t"))
    return pd.concat(out, ignore_index=True)


def affect_windows(con, as_of: datetime, lookback_days: int) -> pd.DataFrame:
    """Raw windows (no payloads) of the lookback period, for the affect anomaly detector."""
    return con.execute("""
        select device_id, region_id, site_type, window_start, window_end, n_observations, n_abstained,
               valence_mean, arousal_mean, distress_share, confidence_mean, quality_pose_stability,
               quality_lighting, quality_snr_db, modality, model_version, simulated
        from affect_windows
        where window_start >= ? and window_start <= ?
        order by region_id, window_start""", [as_of - timedelta(days=lookback_days), as_of]).df()


def affect_cells(windows: pd.DataFrame, field: str, k_min: int, min_devices: int) -> pd.DataFrame:
    """Daily region cells: series, date, n_devices, n_observations, quality, observed (None when suppressed), code."""
    if windows.empty:
        return pd.DataFrame(columns=["series", "date", "n_devices", "n_observations", "quality", "observed", "code"])
    w = windows.copy()
    w["date"] = pd.to_datetime(w["window_start"]).dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    w["scored"] = (w["n_observations"] - w["n_abstained"]).clip(lower=0)
    w["weight"] = w["scored"] * w["confidence_mean"].clip(lower=0)
    w["wx"] = w["weight"] * w[field]
    w["quality"] = window_quality(w)  # the detector's own definition, so cells and verdicts agree
    g = w.groupby(["region_id", "date"])
    cells = pd.DataFrame({
        "n_devices": g["device_id"].nunique(),
        "n_observations": g["n_observations"].sum(),
        "quality": g["quality"].mean(),
        "wsum": g["weight"].sum(),
        "wx": g["wx"].sum(),
        "simulated": g["simulated"].all(),
    }).reset_index().rename(columns={"region_id": "series"})
    cells["observed"] = np.where(cells["wsum"] > 0, cells["wx"] / cells["wsum"].where(cells["wsum"] > 0), np.nan)
    cells["code"] = [int(suppression_code(int(o), int(d), k_min, min_devices))
                     for o, d in zip(cells["n_observations"], cells["n_devices"])]
    cells.loc[cells["code"] != 0, "observed"] = np.nan
    return cells.drop(columns=["wsum", "wx"])
