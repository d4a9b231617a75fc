"""Series the alert engine runs detectors on, built from the warehouse as known at ``as_of``.

* Symptom series: the latest revision (max ``reported_at`` not after ``as_of``) of each
  region, syndrome and period, as counts or as percent of visits; one row per period, interior
  gaps filled explicitly (count 0 / previous percent) and counted, because the detectors need
  consecutive periods.
* Affect cells: the day grain of the one cell definition (``analyst.affect_cells``, SQL in
  ``sql/views/intermediate/int_affect_cells.sql``), exactly as the analyst marts, the dashboard
  and emails show them: a suppressed cell keeps its counts and code but has no value.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from analyst import affect_cells as cell_model
from affectwatch.settings import Settings


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
    epoch = pd.Timestamp("1970-01-04")  # a Sunday: MMWR weeks start on Sunday
    df["t"] = ((df["date"] - epoch).dt.days // step).astype(np.int64)
    df = df.drop_duplicates(["series", "t"], keep="last")
    # complete grid per region from its first to its last period (vectorised: thousands of regions)
    bounds = df.groupby("series", sort=True)["t"].agg(["min", "max"])
    lengths = (bounds["max"] - bounds["min"] + 1).to_numpy()
    starts = np.repeat(bounds["min"].to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = pd.DataFrame({"series": np.repeat(bounds.index.to_numpy(), lengths), "t": starts + offsets})
    full = grid.merge(df, on=["series", "t"], how="left", sort=False)
    full["filled"] = full["count"].isna() | full["observed"].isna()
    # a filled period starts where its neighbours' cadence says (regions may use Saturday or Sunday weeks)
    shift = (df["date"] - (epoch + pd.to_timedelta(df["t"] * step, unit="D"))).groupby(df["series"]).first()
    implied = epoch + pd.to_timedelta(full["t"] * step, unit="D") + full["series"].map(shift)
    full["date"] = full["date"].where(~full["filled"], implied)
    full["period_end"] = pd.to_datetime(full["period_end"]).where(
        ~full["filled"], full["date"] + pd.Timedelta(days=step - 1)).dt.date
    full["revisions"] = full["revisions"].fillna(0).astype(int)
    if measure == "count":
        full["observed"] = full["observed"].fillna(0.0)
    else:
        full["observed"] = full.groupby("series")["observed"].ffill().fillna(0.0)
    return full.reset_index(drop=True)


def affect_windows(con, as_of: datetime, lookback_days: int) -> pd.DataFrame:
    """Raw windows (no payloads) of the lookback period, for the affect anomaly detector."""
    return con.execute("""
        select device_id, region_id, site_type, window_start, window_end, n_observations, n_abstained,
               valence_mean, arousal_mean, distress_share, confidence_mean, quality_pose_stability,
               quality_lighting, quality_snr_db, modality, model_version, simulated
        from affect_windows
        where window_start >= ? and window_start <= ?
        order by region_id, window_start""", [as_of - timedelta(days=lookback_days), as_of]).df()


def affect_cells(con, field: str, as_of: datetime, lookback_days: int, settings: Settings | None = None) -> pd.DataFrame:
    """Day cells up to ``as_of``: series, date, n_devices, n_scored, quality, observed (None unless code 0), code, simulated."""
    cells = cell_model.read(con, "day", settings=settings, where="n_windows > 0 and day between ? and ?",
                            params=[(as_of - timedelta(days=lookback_days)).date(), as_of.date()])
    return pd.DataFrame({
        "series": cells["region_id"], "date": pd.to_datetime(cells["day"]), "n_devices": cells["n_devices"],
        "n_scored": cells["n_scored"], "quality": cells["quality"], "observed": cells[field].astype(float),
        "code": cells["suppression"].astype(int), "simulated": cells["simulated"],
    })
