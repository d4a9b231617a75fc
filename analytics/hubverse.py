"""Read/write CSVs in the FluSight/hubverse formats.

- Target data (``date, location, value`` [, ``as_of``], or the hubverse time series of
  :mod:`affectwatch.target_data`): the truth a backtest forecasts and scores.
- Model output (``reference_date, horizon, target, target_end_date, location, output_type,
  output_type_id, value`` plus ``model``): quantile forecasts.
Bad input raises :class:`FormatError` naming the missing columns or the bad values.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affectwatch import target_data as TD
from affectwatch.logs import get_logger
from analytics.forecast import HUB_COLUMNS

log = get_logger(__name__)


class FormatError(ValueError):
    """A CSV does not follow the expected format."""


def _require(df: pd.DataFrame, needed: list[str], what: str, path) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise FormatError(f"{what} {path}: columns needed {missing}; columns available {list(df.columns)}")


def _dates(s: pd.Series, col: str, path) -> pd.Series:
    out = pd.to_datetime(s, errors="coerce")
    bad = s[out.isna() & s.notna()]
    if len(bad) or s.isna().any():
        raise FormatError(f"{path}: column {col!r} has values that are not dates, e.g. {bad.iloc[0] if len(bad) else None!r}")
    return out


def _read_target_frame(path: Path) -> pd.DataFrame:
    """One CSV, or a folder of them (the hub's ``time-series/as_of=YYYY-MM-DD/`` partitions: a file
    without an ``as_of`` column takes it from its folder's name)."""
    dtype = {c: str for c in (*TD.LOCATION, TD.TARGET)}
    if not path.is_dir():
        return pd.read_csv(path, dtype=dtype)
    files = sorted(path.rglob("*.csv"))
    if not files:
        raise FormatError(f"{path}: a folder without CSV files")
    parts = []
    for f in files:
        df = pd.read_csv(f, dtype=dtype)
        if TD.VINTAGE not in df.columns:
            as_of = TD.partition_as_of(str(f.relative_to(path.parent)))
            if as_of is None:
                raise FormatError(f"{f}: no {TD.VINTAGE!r} column and no as_of=YYYY-MM-DD folder to take it from")
            df[TD.VINTAGE] = as_of
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def read_target_csv(path: str | Path, locations: list[str] | None = None, target: str | None = None) -> pd.DataFrame:
    """Read FluSight target data -> columns ``date, location, value`` (+ ``as_of``). Either layout of
    :mod:`affectwatch.target_data` (``date, location, value`` or the hubverse ``target_end_date,
    location, observation``), one file or a folder of ``as_of=`` partitions. With a ``target``
    column, only the rows of one target (``target``, else the file's only one, else FluSight's
    admissions), whose name is kept in ``attrs["target"]``. A file with a single vintage is final data (as if it had no ``as_of``). Rows whose
    value is NA are dropped (they are missing, not zero); negative values raise."""
    path = Path(path)
    df = _read_target_frame(path)
    chosen = None
    names = {TD.first_present(df.columns, TD.LOCATION): "location", TD.first_present(df.columns, TD.DATE): "date",
             TD.first_present(df.columns, TD.VALUE): "value"}
    df = df.rename(columns={k: v for k, v in names.items() if k is not None and k != v})
    _require(df, ["date", "location", "value"], "target data", path)
    if TD.TARGET in df.columns:
        try:
            chosen = TD.choose_target(df[TD.TARGET].dropna(), target)
        except ValueError as exc:
            raise FormatError(f"{path}: {exc}") from None
        df = df[df[TD.TARGET] == chosen]
    elif target is not None:
        raise FormatError(f"{path}: no {TD.TARGET!r} column, so target {target!r} cannot be chosen")
    df["date"] = _dates(df["date"], "date", path)
    if TD.VINTAGE in df.columns:
        df[TD.VINTAGE] = _dates(df[TD.VINTAGE], TD.VINTAGE, path)
        if df[TD.VINTAGE].nunique() == 1:  # e.g. the hub's latest time-series.csv: what is known now
            log.warning("one vintage only: read as final data (no revisions to learn)", path=str(path),
                        as_of=str(df[TD.VINTAGE].iloc[0].date()))
            df = df.drop(columns=TD.VINTAGE)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    neg = df[df["value"] < 0]
    if len(neg):
        r = neg.iloc[0]
        raise FormatError(f"{path}: negative value {float(r['value']):g} at location {r['location']!r}, date {r['date'].date()}")
    df = df.dropna(subset=["value"])
    if locations:
        df = df[df["location"].isin(locations)]
    keep = ["date", "location", "value"] + ([TD.VINTAGE] if TD.VINTAGE in df.columns else [])
    out = df[keep].reset_index(drop=True)
    if chosen is not None:
        out.attrs["target"] = chosen  # the backtest names its forecasts after it (the hub's own name)
    return out


def read_affect_csv(path: str | Path) -> pd.DataFrame:
    """Affect features per location and week: ``location`` (or ``region_id``), ``date`` and numeric
    feature columns (e.g. valence, arousal, distress_share, confidence). Returns long format."""
    df = pd.read_csv(path, dtype={"location": str, "region_id": str})
    if "location" not in df.columns and "region_id" in df.columns:
        df = df.rename(columns={"region_id": "location"})
    _require(df, ["location", "date"], "affect features", path)
    df["date"] = _dates(df["date"], "date", path)
    feats = [c for c in df.columns if c not in ("location", "date") and pd.api.types.is_numeric_dtype(df[c])
             and c not in ("n_devices", "n_observations", "suppression")]
    if not feats:
        raise FormatError(f"affect features {path}: no numeric feature columns besides location/date; columns available {list(df.columns)}")
    return df


def write_hub_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame[HUB_COLUMNS].copy()
    for c in ("reference_date", "target_end_date"):
        out[c] = pd.to_datetime(out[c]).dt.strftime("%Y-%m-%d")
    out.to_csv(path, index=False)
    return path


def read_hub_csv(path: str | Path) -> pd.DataFrame:
    """Read model output; validates columns, output_type and non-crossing quantiles."""
    df = pd.read_csv(path, dtype={"location": str})
    needed = [c for c in HUB_COLUMNS if c != "model"]
    _require(df, needed, "hubverse model output", path)
    if "model" not in df.columns:
        df["model"] = Path(path).stem
    bad_type = df.loc[df["output_type"] != "quantile", "output_type"]
    if len(bad_type):
        raise FormatError(f"{path}: output_type {bad_type.iloc[0]!r} is not supported (only 'quantile')")
    for c in ("reference_date", "target_end_date"):
        df[c] = _dates(df[c], c, path)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    if df["value"].isna().any():
        raise FormatError(f"{path}: column 'value' has non-numeric or empty entries")
    df = df.sort_values(["model", "location", "reference_date", "horizon", "output_type_id"]).reset_index(drop=True)
    keys = ["model", "location", "reference_date", "horizon", "target"]
    d = df.groupby(keys, sort=False)["value"].diff()
    if (d < -1e-9).any():
        i = int(np.flatnonzero((d < -1e-9).to_numpy())[0])
        r, prev = df.iloc[i], df.iloc[i - 1]
        raise FormatError(
            f"{path}: quantiles cross for model {r['model']!r}, location {r['location']!r}, reference date "
            f"{r['reference_date'].date()}, horizon {r['horizon']}: level {r['output_type_id']} value {r['value']!r} < "
            f"level {prev['output_type_id']} value {prev['value']!r}")
    return df
