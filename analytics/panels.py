"""Region panels from the warehouse (or from DataFrames with the same columns).

* Symptom series: weekly (MMWR weeks ending Saturday) or daily counts per region for one syndrome,
  the latest revision (max ``reported_at``) per period, or what was known ``as_of`` a time
  (latest ``reported_at`` <= as_of). Daily reports are summed into complete MMWR weeks.
* Affect features per region-period: the day or week grain of the one cell definition
  (``analyst.affect_cells``, SQL ``sql/views/intermediate/int_affect_cells.sql``): device-
  weighted means of valence, arousal, distress share, confidence and capture-quality indicators,
  devices, scored observations and the suppression code, exactly as the analyst marts publish
  them (whole cells only, never a partial period). A suppressed cell has NULL features, never 0.
* Model versions: an on-device model update can shift scores (e.g. +0.08 arousal). Each non-
  reference version's shift is estimated on published cells (cells led by that version minus
  cells led by the reference version, in regions that have both) and subtracted, so a version
  change alone does not move the features much.
Days are UTC calendar days of ``window_start``; weeks are MMWR weeks (Sunday..Saturday), dated by
their Saturday.
"""
from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from analyst import affect_cells
from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings

log = get_logger(__name__)

AFFECT_FEATURES = ("valence", "arousal", "distress_share", "confidence")
QUALITY_FEATURES = ("quality_pose_stability", "quality_lighting", "quality_snr_db")
_SOURCE = {"valence": "valence_mean", "arousal": "arousal_mean", "distress_share": "distress_share",
           "confidence": "confidence_mean", "quality_pose_stability": "pose_stability",
           "quality_lighting": "lighting", "quality_snr_db": "snr_db"}

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
    """Per model version, the mean feature shift against the version leading most cells, estimated on
    published cells of regions where both lead some cells."""
    counts = cells.groupby("model_version")["n_observations"].sum()
    ref = counts.idxmax()
    rows = []
    for v in counts.index:
        shift = {f: 0.0 for f in features}
        if v != ref:
            both = set(cells.loc[cells.model_version == v, "location"]) & set(cells.loc[cells.model_version == ref, "location"])
            a = cells[(cells.model_version == v) & cells.location.isin(both)].groupby("location")[features].mean()
            b = cells[(cells.model_version == ref) & cells.location.isin(both)].groupby("location")[features].mean()
            d = (a - b).mean() if len(both) else cells[cells.model_version == v][features].mean() - cells[cells.model_version == ref][features].mean()
            shift = {f: float(d[f]) if pd.notna(d[f]) else 0.0 for f in features}
            log.info("model version shift removed", version=v, reference=ref, regions=len(both),
                     **{f"shift_{f}": round(x, 4) for f, x in shift.items()})
        rows.append({"model_version": v, **shift})
    return pd.DataFrame(rows)


def affect_features(con: duckdb.DuckDBPyConnection | None = None, *, windows: pd.DataFrame | None = None,
                    freq: str = "W", start=None, end=None, settings: Settings | None = None,
                    adjust_versions: bool = True) -> pd.DataFrame:
    """Affect features per region-period from the warehouse (``con``) or from a DataFrame with the
    ``affect_windows`` columns (``windows``). Columns: ``location, date, <features>, n_devices,
    n_observations (scored), suppression``; suppressed cells have NULL features. ``start``/``end``
    keep the whole cells that overlap [start, end)."""
    if freq not in ("W", "D"):
        raise ValueError(f"freq {freq!r} is not supported; use 'W' or 'D'")
    s = settings or get_settings()
    grain, days = ("week", 7) if freq == "W" else ("day", 1)
    where = "n_windows > 0 and (?::date is null or day + ? > ?::date) and (?::date is null or day < ?::date)"
    lo = pd.Timestamp(start).date() if start is not None else None
    hi = pd.Timestamp(end).date() if end is not None else None
    params = [lo, days, lo, hi, hi]
    if windows is not None:
        cells = affect_cells.from_windows(windows, grain, s, where=where, params=params)
    elif con is not None:
        cells = affect_cells.read(con, grain, settings=s, where=where, params=params)
    else:
        raise ValueError("affect_features needs a warehouse connection or a windows DataFrame")
    feats = list(AFFECT_FEATURES + QUALITY_FEATURES)
    cols = ["location", "date", *feats, "n_devices", "n_observations", "suppression"]
    if cells.empty:
        return pd.DataFrame(columns=cols)
    day = pd.to_datetime(cells["day"])
    out = pd.DataFrame({
        "location": cells["region_id"], "date": day + pd.Timedelta(days=6) if freq == "W" else day,
        **{f: cells[_SOURCE[f]].astype(float) for f in feats},
        "n_devices": cells["n_devices"], "n_observations": cells["n_scored"],
        "suppression": cells["suppression"].astype(int), "model_version": cells["model_version"],
    })
    published = out[out["suppression"] == 0]
    if adjust_versions and published["model_version"].nunique() > 1:
        shifts = _version_shifts(published, list(AFFECT_FEATURES)).set_index("model_version")
        known = out["model_version"].isin(shifts.index)
        out.loc[known, list(AFFECT_FEATURES)] = (
            out.loc[known, list(AFFECT_FEATURES)].to_numpy() - shifts.loc[out.loc[known, "model_version"], list(AFFECT_FEATURES)].to_numpy())
    return out[cols].sort_values(["location", "date"]).reset_index(drop=True)
