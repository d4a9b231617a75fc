"""Survey affect (modality ``survey``, REAL) as frames: as-of vintages, suppression, forecast features.

One place for what a survey-affect value "known on D" is and which cells are suppressed:

* :func:`as_of` — per (region, date, indicator, source) the latest ``issue`` on or before D; days
  after D are dropped. A value issued after D is never returned.
* :func:`suppress` — a cell whose ``sample_size`` is missing or below
  ``settings.privacy.min_survey_sample_size`` gets ``Suppression.TOO_SMALL_SAMPLE`` and NULL value and
  stderr (the SQL view ``survey_affect_region_day`` applies the same rule in SQL).
* :func:`features` — the wide (location, date, one column per indicator) frame the forecasters take
  as exogenous covariates; the last known value is carried forward to the reference date (survey
  estimates are published ~5 days after the day they describe), at most ``carry_days`` days.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger
from affectwatch.privacy import Suppression

log = get_logger(__name__)

KEY = ["region_id", "date", "indicator", "source"]
MODALITY_LABEL = {"survey": "REAL", "device": "SIMULATED"}  # device affect in this product comes from the simulator


def read_files(paths: Iterable[str | Path], fmt: str = "covidcast") -> pd.DataFrame:
    """Parse survey-affect files with the loader's validation (no warehouse); bad rows are logged and left out."""
    from ingest.load_affect import parse_file

    frames = []
    for p in paths:
        df, bad, skipped = parse_file(p, fmt)
        if bad:
            log.warning("survey affect rows rejected", file=Path(p).name, rows=len(bad),
                        reasons=dict(pd.Series([b.reason for b in bad]).value_counts()))
        frames.append(df.drop(columns=["_line"], errors="ignore"))
    out = pd.concat(frames, ignore_index=True)
    out["date"] = pd.to_datetime(out["date"])
    out["issue"] = pd.to_datetime(out["issue"])
    return out


def as_of(df: pd.DataFrame, reference_date) -> pd.DataFrame:
    """What was known on ``reference_date``: the latest issue <= it per key; later days dropped."""
    ref = pd.Timestamp(reference_date)
    known = df[(df["issue"] <= ref) & (df["date"] <= ref)]
    return known.sort_values("issue").drop_duplicates(KEY, keep="last").sort_values(KEY).reset_index(drop=True)


def suppression_codes(sample_size: pd.Series, min_sample_size: int) -> pd.Series:
    n = pd.to_numeric(sample_size, errors="coerce")
    return pd.Series(np.where(n.isna() | (n < min_sample_size), int(Suppression.TOO_SMALL_SAMPLE),
                              int(Suppression.NOT_SUPPRESSED)), index=sample_size.index)


def suppress(df: pd.DataFrame, min_sample_size: int | None = None) -> pd.DataFrame:
    """Add ``suppression`` (code) and NULL ``value``/``stderr`` in cells below the minimum sample size."""
    if min_sample_size is None:
        from affectwatch.settings import get_settings

        min_sample_size = get_settings().privacy.min_survey_sample_size
    out = df.copy()
    out["suppression"] = suppression_codes(out["sample_size"], min_sample_size)
    hidden = out["suppression"] != int(Suppression.NOT_SUPPRESSED)
    out.loc[hidden, ["value", "stderr"]] = np.nan
    return out


def features(known: pd.DataFrame, indicators: Sequence[str], reference_date, *, carry_days: int = 14,
             freq: str = "D") -> pd.DataFrame:
    """Wide covariates (location, date, <indicator>...) from suppressed known rows, on a daily (or
    Saturday) grid up to ``reference_date``, last value carried forward <= ``carry_days`` days."""
    ref = pd.Timestamp(reference_date)
    sub = known[known["indicator"].isin(indicators)]
    if sub.empty:
        return pd.DataFrame(columns=["location", "date", *indicators])
    w = sub.pivot_table(index="date", columns=["region_id", "indicator"], values="value", aggfunc="last")
    days = pd.date_range(w.index.min(), ref, freq="D")
    w = w.reindex(days).ffill(limit=carry_days)
    if freq == "W":
        w = w[w.index.dayofweek == 5]
    long = w.stack(level=0, future_stack=True).reset_index()
    long.columns = ["date", "location", *long.columns[2:]]
    for ind in indicators:
        if ind not in long.columns:
            long[ind] = np.nan
    return long[["location", "date", *indicators]]


def from_warehouse(con, *, as_of_date=None, region_id: str | None = None) -> pd.DataFrame:
    """Survey affect cells from the analyst view (suppressed), optionally as known on ``as_of_date``."""
    where, params = [], []
    if region_id is not None:
        where.append("region_id = ?")
        params.append(region_id)
    if as_of_date is None:
        sql = "select * from analyst.main.survey_affect_region_day"
    else:
        sql = "select * from analyst.main.survey_affect_known_at(cast(? as date))"
        params.insert(0, str(pd.Timestamp(as_of_date).date()))
    if where:
        sql += " where " + " and ".join(where)
    return con.execute(sql + " order by region_id, indicator, date", params).df()
