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
  reference version's shift is estimated like with like: on the hour cells of the same cell model
  (split by model version), in the region-hours where both versions have a published cell (the
  rollout overlap). Each day or week cell then loses its versions' shifts in proportion to their
  scored observations, so a version change alone does not move the features. Without an overlap
  the shift cannot be told apart from a real change, so nothing is subtracted (and a warning says
  so): comparing cells before and after a rollout would remove real seasonal change.
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


def _version_shifts(hours: pd.DataFrame, features: list[str]) -> dict[str, dict[str, float]]:
    """Per model version, its mean feature shift against the version with most scored observations,
    from region-hours where both have a published hour cell (``hours``: hour cells, all codes)."""
    counts = hours.groupby("model_part")["n_scored"].sum()
    ref = counts.idxmax()
    published = hours[hours["suppression"] == 0]
    base = published[published["model_part"] == ref].set_index(["region_id", "period_start"])
    shifts = {ref: {f: 0.0 for f in features}}
    for v in counts.index.drop(ref):
        mine = published[published["model_part"] == v].set_index(["region_id", "period_start"])
        both = mine.index.intersection(base.index)
        if len(both):
            d = mine.loc[both, [_SOURCE[f] for f in features]].to_numpy() - base.loc[both, [_SOURCE[f] for f in features]].to_numpy()
            shifts[v] = {f: float(pd.Series(d[:, i]).mean()) for i, f in enumerate(features)}
            log.info("model version shift removed", version=v, reference=ref, overlap_cells=len(both),
                     **{f"shift_{f}": round(x, 4) for f, x in shifts[v].items()})
        else:
            shifts[v] = {f: 0.0 for f in features}
            log.warning("model version shift not removed: no region-hour where both versions have a "
                        "published cell", version=v, reference=ref)
    return shifts


def _version_adjustment(hours: pd.DataFrame, features: list[str], freq: str) -> pd.DataFrame:
    """``region_id, day`` (the period's first day) and, per feature, the shift to subtract: each
    version's shift weighted by its share of the period's scored observations."""
    shifts = _version_shifts(hours, features)
    h = hours[["region_id", "period_start", "model_part", "n_scored"]].copy()
    day = pd.to_datetime(h["period_start"])
    day = (day.dt.tz_convert("UTC").dt.tz_localize(None) if day.dt.tz is not None else day).dt.normalize()
    h["day"] = day - pd.to_timedelta((day.dt.dayofweek + 1) % 7, unit="D") if freq == "W" else day
    for f in features:
        h[f] = h["n_scored"] * h["model_part"].map(lambda v, f=f: shifts[v][f])
    g = h.groupby(["region_id", "day"])[["n_scored", *features]].sum()
    out = g[features].div(g["n_scored"].where(g["n_scored"] > 0), axis=0).fillna(0.0)
    return out.reset_index()


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

    if windows is not None:  # one in-memory database serves both grains read below
        with affect_cells.windows_session(windows, s) as wcon:
            return _features(wcon, freq, grain, s, where, params, adjust_versions)
    if con is None:
        raise ValueError("affect_features needs a warehouse connection or a windows DataFrame")
    return _features(con, freq, grain, s, where, params, adjust_versions)


def _features(con: duckdb.DuckDBPyConnection, freq: str, grain: str, s: Settings, where: str, params: list,
              adjust_versions: bool) -> pd.DataFrame:
    def cells_of(grain: str) -> pd.DataFrame:
        return affect_cells.read(con, grain, settings=s, where=where, params=params)

    cells = cells_of(grain)
    feats = list(AFFECT_FEATURES + QUALITY_FEATURES)
    cols = ["location", "date", *feats, "n_devices", "n_observations", "suppression"]
    if cells.empty:
        return pd.DataFrame(columns=cols)
    day = pd.to_datetime(cells["day"])
    out = pd.DataFrame({
        "location": cells["region_id"], "date": day + pd.Timedelta(days=6) if freq == "W" else day,
        **{f: cells[_SOURCE[f]].astype(float) for f in feats},
        "n_devices": cells["n_devices"], "n_observations": cells["n_scored"],
        "suppression": cells["suppression"].astype(int),
    })
    several = cells["model_versions"].fillna("").str.contains(",").any() or cells["model_version"].dropna().nunique() > 1
    if adjust_versions and several:
        adj = _version_adjustment(cells_of("hour"), list(AFFECT_FEATURES), freq)
        adj = adj.rename(columns={"region_id": "location"})
        adj["day"] = adj["day"] + pd.Timedelta(days=6) if freq == "W" else adj["day"]
        keyed = out[["location", "date"]].merge(adj.rename(columns={"day": "date"}), on=["location", "date"], how="left")
        out[list(AFFECT_FEATURES)] = out[list(AFFECT_FEATURES)].to_numpy() - keyed[list(AFFECT_FEATURES)].fillna(0.0).to_numpy()
    return out[cols].sort_values(["location", "date"]).reset_index(drop=True)
