"""Read/write CSVs in the FluSight/hubverse formats.

- Target data (``date, location, value`` [, ``as_of``], or the hubverse time series of
  :mod:`affectwatch.target_data`): the truth a backtest forecasts and scores.
- Model output (``reference_date, horizon, target, target_end_date, location, output_type,
  output_type_id, value`` plus ``model``): quantile forecasts.
Bad input raises :class:`FormatError` naming the missing columns or the bad values.
"""
from __future__ import annotations

import re
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


def _folder_files(path: Path, suffixes: tuple[str, ...] = (".csv",), what: str = "CSV") -> list[Path]:
    """The files with one of ``suffixes`` anywhere under the folder ``path`` (sorted); none is an error."""
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in suffixes)
    if not files:
        raise FormatError(f"{path}: a folder without {what} files")
    return files


def _read_target_frame(path: Path) -> pd.DataFrame:
    """One CSV, or a folder of them (the hub's ``time-series/as_of=YYYY-MM-DD/`` partitions: a file
    without an ``as_of`` column takes it from its folder's name)."""
    dtype = {c: str for c in (*TD.LOCATION, TD.TARGET)}
    if not path.is_dir():
        return pd.read_csv(path, dtype=dtype)
    parts = []
    for f in _folder_files(path):
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
    admissions), whose name is kept in ``attrs["target"]``. A file with a single vintage is final
    data (as if it had no ``as_of``). Rows whose value is NA are dropped (they are missing, not zero);
    negative values raise."""
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


HUB_FILE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}-(.+)$")  # a hub submission: <reference_date>-<model_id>.csv


def _model_file(path: Path) -> pd.DataFrame:
    """One model-output file (CSV or parquet); without a ``model`` column the model is named after the
    file, as the hub names submissions (``2023-10-14-FluSight-ensemble.csv`` -> ``FluSight-ensemble``)."""
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"location": str, "output_type_id": str})
    _require(df, [c for c in HUB_COLUMNS if c != "model"], "hubverse model output", path)
    if "model" not in df.columns:
        m = HUB_FILE_RE.match(path.stem)
        df["model"] = m.group(1) if m else path.stem
    return df.assign(location=df["location"].astype(str))


def read_hub_csv(path: str | Path, target: str | None = None) -> pd.DataFrame:
    """Read model output: a file, or a folder of them (a hub model's ``model-output/<model>/`` folder,
    one file per reference date, or all of ``model-output/``). Only quantile forecasts of one target
    are kept: the only one, else ``target``, else FluSight's admissions (as for target data; a single
    target is read whatever its name, as our backtest's ``wk inc flu_admissions`` next to the hub's
    ``wk inc flu hosp``). A hub submission's other rows (``pmf`` rate-change categories, ``sample``
    trajectories, peak targets) are counted in the log and left out. Validates columns, values and
    non-crossing quantiles."""
    path = Path(path)
    files = _folder_files(path, (".csv", ".parquet"), "CSV or parquet") if path.is_dir() else [path]
    df = pd.concat([_model_file(f) for f in files], ignore_index=True)
    other = df["output_type"] != "quantile"
    if other.all():
        raise FormatError(f"{path}: no quantile forecasts (output types {sorted(df['output_type'].astype(str).unique())})")
    if other.any():
        log.info("model output: only quantile rows are scored", path=str(path),
                 left_out=df.loc[other, "output_type"].astype(str).value_counts().to_dict())
    df = df[~other]
    found = df["target"].dropna().astype(str)
    several = found.nunique() > 1
    try:
        chosen = TD.choose_target(found, target if several else None)
    except ValueError as exc:
        raise FormatError(f"{path}: {exc}") from None
    if several:
        log.info("model output: one target is scored", path=str(path), target=chosen)
    df = df[df["target"] == chosen].copy()
    df["output_type_id"] = pd.to_numeric(df["output_type_id"], errors="coerce")
    if df["output_type_id"].isna().any():
        raise FormatError(f"{path}: quantile rows whose output_type_id is not a level between 0 and 1")
    df["horizon"] = pd.to_numeric(df["horizon"], errors="coerce")
    if df["horizon"].isna().any():
        raise FormatError(f"{path}: quantile rows of target {chosen!r} without a horizon")
    df["horizon"] = df["horizon"].astype(int)
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
