"""Region panels from the warehouse (or from DataFrames with the same columns).

* Symptom series: weekly (MMWR weeks ending Saturday) or daily counts per region for one syndrome,
  the latest revision (max ``reported_at``) per period, or what was known ``as_of`` a time
  (latest ``reported_at`` <= as_of). Daily reports are summed into complete MMWR weeks.
* Affect features per region-period: device-weighted (by ``n_observations``) means of valence,
  arousal, distress share, confidence and capture-quality indicators; number of devices (distinct
  ``device_id``) and observations; and the privacy code of :mod:`affectwatch.privacy`. A suppressed
  cell carries its code and NULL features, never zeros.
* Model versions: an on-device model update can shift scores (e.g. +0.08 arousal). Each non-
  reference version's shift is estimated from region-days where both versions report (the rollout
  overlap; all region-days if they never overlap) and subtracted before aggregation, so a version
  change alone does not move the features.
Days are UTC calendar days of ``window_start``.
"""
from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.privacy import Suppression, suppression_code
from affectwatch.settings import Settings, get_settings

log = get_logger(__name__)

AFFECT_FEATURES = ("valence", "arousal", "distress_share", "confidence")
QUALITY_FEATURES = ("quality_pose_stability", "quality_lighting", "quality_snr_db")
_SOURCE = {"valence": "valence_mean", "arousal": "arousal_mean", "distress_share": "distress_share",
           "confidence": "confidence_mean", **{q: q for q in QUALITY_FEATURES}}

SYMPTOMS_SQL = """
-- latest revision per (region, period) known at the as-of time
with ranked as (
    select region_id, period_start, period_end, count, denominator,
           row_number() over (partition by region_id, period_start, period_end order by reported_at desc) as rn
    from symptom_reports
    where syndrome = $syndrome and ($as_of is null or reported_at <= $as_of)
)
select region_id, period_start, period_end, count, denominator from ranked where rn = 1
"""

DAY_CELLS_SQL = """
-- observation-weighted sums per (region, UTC day, model version)
select region_id,
       cast(window_start at time zone 'UTC' as date) as day,
       model_version,
       sum(n_observations) as n_obs,
       {sums}
from {rel}
where ($start is null or window_start >= $start) and ($end is null or window_start < $end)
group by all
"""

DEVICES_SQL = """
-- distinct devices per (region, period)
select region_id, {period} as date, count(distinct device_id) as n_devices
from (select region_id, device_id, cast(window_start at time zone 'UTC' as date) as day from {rel}
      where ($start is null or window_start >= $start) and ($end is null or window_start < $end))
group by all
"""


def week_end(dates: pd.Series) -> pd.Series:
    """The Saturday ending the MMWR week (Sunday..Saturday) of each date."""
    d = pd.to_datetime(dates)
    return d + pd.to_timedelta((5 - d.dt.dayofweek) % 7, unit="D")


def symptom_series(con: duckdb.DuckDBPyConnection, syndrome: str, freq: str = "W",
                   as_of: datetime | str | None = None) -> pd.DataFrame:
    """``location, date, value, denominator`` for one syndrome (latest revision or as of a time)."""
    if freq not in ("W", "D"):
        raise ValueError(f"freq {freq!r} is not supported; use 'W' or 'D'")
    params = {"syndrome": syndrome, "as_of": pd.Timestamp(as_of).to_pydatetime() if as_of is not None else None}
    df = con.execute(SYMPTOMS_SQL, params).df()
    cols = ["location", "date", "value", "denominator"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    df["period_start"] = pd.to_datetime(df["period_start"])
    df["period_end"] = pd.to_datetime(df["period_end"])
    days = (df["period_end"] - df["period_start"]).dt.days + 1
    if freq == "D":
        daily = df[days == 1]
        out = daily.rename(columns={"region_id": "location", "period_end": "date", "count": "value"})
        return out[cols].sort_values(["location", "date"]).reset_index(drop=True)
    weekly = df[(days == 7) & (df["period_end"].dt.dayofweek == 5)]
    weekly = weekly.rename(columns={"region_id": "location", "period_end": "date", "count": "value"})[cols]
    daily = df[days == 1].copy()
    if len(daily):
        daily["date"] = week_end(daily["period_end"])
        g = daily.groupby(["region_id", "date"]).agg(value=("count", "sum"), denominator=("denominator", "sum"),
                                                     n_days=("count", "size")).reset_index()
        g = g[g["n_days"] == 7].rename(columns={"region_id": "location"})  # complete weeks only
        weekly = pd.concat([weekly, g[cols]], ignore_index=True).drop_duplicates(["location", "date"], keep="first")
    weekly["value"] = weekly["value"].astype(float)
    return weekly.sort_values(["location", "date"]).reset_index(drop=True)


def _version_shifts(cells: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Per model version, the mean feature shift against the most common version, estimated on
    region-days where both report (falls back to all region-days)."""
    counts = cells.groupby("model_version")["n_obs"].sum()
    ref = counts.idxmax()
    rows = []
    for v in counts.index:
        if v == ref:
            rows.append({"model_version": v, **{f: 0.0 for f in features}})
            continue
        a = cells[cells.model_version == v].set_index(["region_id", "day"])
        b = cells[cells.model_version == ref].set_index(["region_id", "day"])
        both = a.index.intersection(b.index)
        shift = {}
        for f in features:
            if len(both):
                d = (a.loc[both, f] - b.loc[both, f]).dropna()
                shift[f] = float(d.mean()) if len(d) else 0.0
            else:
                shift[f] = float(a[f].mean() - b[f].mean())
        rows.append({"model_version": v, **shift})
        log.info("model version shift removed", version=v, reference=ref, overlap_cells=len(both),
                 **{f"shift_{f}": round(s, 4) for f, s in shift.items()})
    return pd.DataFrame(rows)


def affect_features(con: duckdb.DuckDBPyConnection | None = None, *, windows: pd.DataFrame | None = None,
                    freq: str = "W", start=None, end=None, settings: Settings | None = None,
                    adjust_versions: bool = True) -> pd.DataFrame:
    """Affect features per region-period from the warehouse ``affect_windows`` table or from a
    DataFrame with its columns (``windows``). Columns: ``location, date, <features>, n_devices,
    n_observations, suppression``; suppressed cells have NULL features."""
    s = settings or get_settings()
    if windows is not None:
        import pyarrow as pa

        con = duckdb.connect()
        con.register("windows_df", pa.Table.from_pandas(windows, preserve_index=False))
        rel = "windows_df"
    elif con is not None:
        rel = "affect_windows"
    else:
        raise ValueError("affect_features needs a warehouse connection or a windows DataFrame")
    feats = list(AFFECT_FEATURES + QUALITY_FEATURES)
    sums = ",\n       ".join(
        f"sum(n_observations * {_SOURCE[f]}) / nullif(sum(case when {_SOURCE[f]} is not null then n_observations end), 0) as {f}"
        for f in feats)
    params = {"start": pd.Timestamp(start).to_pydatetime() if start is not None else None,
              "end": pd.Timestamp(end).to_pydatetime() if end is not None else None}
    cells = con.execute(DAY_CELLS_SQL.format(sums=sums, rel=rel), params).df()
    cols = ["location", "date", *feats, "n_devices", "n_observations", "suppression"]
    if cells.empty:
        return pd.DataFrame(columns=cols)
    cells["day"] = pd.to_datetime(cells["day"])
    if adjust_versions and cells["model_version"].nunique() > 1:
        shifts = _version_shifts(cells, feats).set_index("model_version")
        cells[feats] = cells[feats] - shifts.loc[cells["model_version"], feats].to_numpy()
    cells["date"] = week_end(cells["day"]) if freq == "W" else cells["day"]
    w = cells["n_obs"].to_numpy(dtype=float)
    agg = {"n_observations": cells.groupby(["region_id", "date"])["n_obs"].sum()}
    for f in feats:
        ok = cells[f].notna()
        num = (cells[f].fillna(0) * w).groupby([cells["region_id"], cells["date"]]).sum()
        den = pd.Series(np.where(ok, w, 0.0)).groupby([cells["region_id"].to_numpy(), cells["date"].to_numpy()]).sum()
        agg[f] = (num / den.to_numpy()).where(den.to_numpy() > 0)
    out = pd.DataFrame(agg).reset_index().rename(columns={"region_id": "location"})
    period = "day" if freq == "D" else "day + cast((6 - dayofweek(day)) % 7 as integer)"
    dev = con.execute(DEVICES_SQL.format(period=period, rel=rel), params).df()
    dev["date"] = pd.to_datetime(dev["date"])
    out = out.merge(dev.rename(columns={"region_id": "location"}), on=["location", "date"], how="left")
    codes = [int(suppression_code(int(n), int(d), s.privacy.k_min, s.privacy.min_devices))
             for n, d in zip(out["n_observations"], out["n_devices"].fillna(0))]
    out["suppression"] = codes
    low = (out["suppression"] == 0) & (out["confidence"] < s.alerts.min_quality)
    out.loc[low, "suppression"] = int(Suppression.LOW_QUALITY)
    out.loc[out["suppression"] != 0, feats] = np.nan
    return out[cols].sort_values(["location", "date"]).reset_index(drop=True)
