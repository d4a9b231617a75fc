"""Season-shape features on a common scale for the pooled models (after the UMass Flusion model).

Common scale: a series of counts ``y`` becomes ``x = y**0.25 / s`` (fourth root, a variance-
stabilising transform) where ``s`` is the series' scale:

* a per-capita source (state admissions), for each location with a population: one scale for the source,
  ``s_loc = pop_loc**0.25 * median over locations of q95((y / pop)**0.25)`` — per-capita, so a
  state with a short history borrows the source's scale instead of its own off-season values;
* otherwise (ILINet, whose visit counts depend on how many providers report; warehouse regions
  without populations): the 95th percentile of the location's own ``y**0.25``. In a per-capita
  source, a location without a population takes its own scale; the others stay per-capita.

Features at week t (all from weeks <= t of the same series): level ``x_t``, 3-week mean, slopes over
1..4 weeks, curvature, position in the season (sine/cosine of the week of season), weeks from the
location's typical peak week (scaled, clipped), log scale (a location effect) and a target-source
flag; targets are ``x_{t+k} - x_t``.

Extra ILINet data for ``gbq`` are ILI visits above a rolling non-influenza floor (:func:`above_floor`)
when the target is not ILI itself; chosen on the two admissions folds (README, issue #10).

Which model sees which features was chosen by leave-one-season-out validation (README, issue #10):
the gradient-boosted ``gbq`` (``FEATURES``) leaves out the season-timing features. With them, the
trees learn the ILINet seasons' usual timing and keep forecasting growth after an early peak: on
the NHSN 2022-23 fold (a season that peaked in early December) relative WIS 0.965 with them, 0.750
without; over the 14 folds 0.827 with, 0.817 without — much better on the atypical seasons (ILINet
2020-21 1.059 vs 1.348, 2021-22, 2022-23, NHSN 2022-23), worse by 0.00-0.09 on nine of the ten
pre-pandemic seasons. The linear ``qar`` (``LINEAR_FEATURES``) keeps them: 0.874 with, 0.894
without.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from analytics.ilinet import season_start_year, season_week

FEATURES = ("level", "mean3", "slope1", "slope2", "slope3", "slope4", "curv", "log_scale", "is_target")
LINEAR_FEATURES = ("level", "slope1", "slope2", "slope4", "curv", "season_sin", "season_cos", "from_peak_c", "is_target")
MIN_OBS = 6  # weeks of history a series needs for features (4-week slope + curvature + 1)
FLOOR_QUANTILE = 0.5  # ILINet's non-influenza floor: this quantile of the previous FLOOR_WEEKS weeks
FLOOR_WEEKS = 52


@dataclass
class Series:
    """One weekly series of counts on a regular weekly index."""

    source: str
    location: str
    dates: pd.DatetimeIndex
    y: np.ndarray
    affect: np.ndarray | None = None  # (T, F) standardised affect, or None


def prepend(s: Series, dates: pd.DatetimeIndex, values: np.ndarray) -> Series:
    """``s`` with earlier weeks in front (:mod:`analytics.nhsn`), on one regular weekly index from the
    first added week (weeks in neither are NaN). Only weeks where ``s`` has no value are filled, and
    only weeks on ``s``'s weekly grid; added weeks have no affect (NaN)."""
    if not len(dates) or (s.dates[0] - dates[0]).days % 7:
        return s
    idx = pd.date_range(min(dates[0], s.dates[0]), s.dates[-1], freq="7D")
    at = idx.get_indexer(s.dates)
    y = np.full(len(idx), np.nan)
    y[at] = s.y
    early = pd.Series(values, index=dates).reindex(idx).to_numpy(dtype=float)
    y = np.where(np.isfinite(y), y, early)
    affect = None
    if s.affect is not None:
        affect = np.full((len(idx), s.affect.shape[1]), np.nan)
        affect[at] = s.affect
    return Series(s.source, s.location, idx, y, affect)


def above_floor(s: Series, q: float | None = None, weeks: int = FLOOR_WEEKS) -> Series:
    """ILI visits above the series' non-influenza floor: ``y_t`` minus the ``q`` quantile
    (``FLOOR_QUANTILE``) of the previous ``weeks`` weeks, clipped at 0 (the first 20 weeks of a
    series, which have too few past weeks, take the first computed floor). A copy: the input is not
    changed.

    ILI counts every influenza-like illness (RSV, rhinovirus, COVID-19 ...), so raw ILINet has a
    floor that admissions for laboratory-confirmed influenza do not, and its rises look slower on the
    fourth-root scale; trees trained on it under-forecast a fast admissions rise (NHSN 2022-23).
    Removing the floor makes the extra source more like the target (Flusion uses ILI+, ILI times the
    share of positive influenza tests, which needs virology data this repository does not have).
    """
    q = FLOOR_QUANTILE if q is None else q
    y = pd.Series(s.y)
    floor = y.shift(1).rolling(weeks, min_periods=20).quantile(q).bfill().to_numpy()
    out = np.where(np.isfinite(s.y), np.maximum(s.y - floor, 0.0), np.nan)
    return Series(s.source, s.location, s.dates, out, s.affect)


@lru_cache(maxsize=64)
def _calendar(dates_ns: bytes) -> tuple[np.ndarray, np.ndarray]:
    d = pd.DatetimeIndex(np.frombuffer(dates_ns, dtype="datetime64[ns]"))
    seasons, weeks = season_start_year(d), season_week(d)
    seasons.flags.writeable = weeks.flags.writeable = False
    return seasons, weeks


def calendar(dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """(season, week of season) of each date (read-only arrays). Cached by the dates themselves: the
    thousands of series of one panel share one index, so the calendar is worked out once."""
    return _calendar(np.asarray(dates, dtype="datetime64[ns]").tobytes())


def fourth_root(y: np.ndarray) -> np.ndarray:
    return np.power(np.maximum(y, 0.0), 0.25)


def scales(series: list[Series], pops: dict[str, float], per_capita_sources: tuple[str, ...] = ("target", "nhsn")
           ) -> dict[tuple[str, str], float]:
    """Scale per (source, location) on the fourth-root scale (see the module docstring); only
    ``per_capita_sources`` may share one per-capita scale."""
    out: dict[tuple[str, str], float] = {}
    by_source: dict[str, list[Series]] = {}
    for s in series:
        by_source.setdefault(s.source, []).append(s)
    for source, group in by_source.items():
        # per-capita for the locations with a population; one without (a territory missing from
        # locations.csv, a county) keeps its own scale and does not switch the others off
        with_pop = [s for s in group if s.location in pops] if source in per_capita_sources else []
        q = [np.nanquantile(fourth_root(s.y / pops[s.location]), 0.95) for s in with_pop if np.isfinite(s.y).any()]
        q = [v for v in q if v > 0]
        common = float(np.median(q)) if q else 0.0
        for s in group:
            if common > 0 and s.location in pops:  # common > 0 only for a per-capita source
                out[(source, s.location)] = common * pops[s.location] ** 0.25
            else:
                v = float(np.nanquantile(fourth_root(s.y), 0.95)) if np.isfinite(s.y).any() else 0.0
                out[(source, s.location)] = max(v, 1.0)  # a count of 1 is the smallest non-zero level
    return out


def typical_peaks(series: list[Series]) -> tuple[dict[str, float], float]:
    """Median season week of each location's seasonal maximum over complete seasons (>= 40 weeks
    observed), pooled over sources sharing a location code; plus the overall median."""
    peaks: dict[str, list[float]] = {}
    for s in series:
        ok = np.isfinite(s.y)
        if not ok.any():
            continue
        seas, wk = calendar(s.dates)
        for season in np.unique(seas[ok]):
            m = ok & (seas == season)
            if m.sum() >= 40 and np.nanmax(s.y[m]) > 0:
                peaks.setdefault(s.location, []).append(float(wk[m][np.argmax(s.y[m])]))
    typical = {loc: float(np.median(v)) for loc, v in peaks.items()}
    overall = float(np.median([w for v in peaks.values() for w in v])) if peaks else 26.0
    return typical, overall


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` shifted ``k`` periods later (NaN-padded), the same length as ``x`` even when it is shorter than ``k``."""
    if not k:
        return x
    n = len(x)
    return np.r_[np.full(min(k, n), np.nan), x[:max(n - k, 0)]]


def feature_matrix(s: Series, scale: float, peak: float, is_target: bool, columns: list[str]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The features of :func:`feature_arrays` as a (weeks, columns) array in the order of ``columns``
    (a column the series lacks, e.g. affect on ILINet, is NaN) and ``x``: no data frame per series."""
    f, x = feature_arrays(s, scale, peak, is_target)
    missing = np.full(len(x), np.nan)
    return np.column_stack([f.get(c, missing) for c in columns]), x


def feature_arrays(s: Series, scale: float, peak: float, is_target: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature name -> values (one per week), and the scaled series ``x``."""
    x = fourth_root(s.y) / scale
    x = np.where(np.isfinite(s.y), x, np.nan)
    wk = calendar(s.dates)[1]
    f = {
        "level": x,
        "mean3": (x + _lag(x, 1) + _lag(x, 2)) / 3,
        **{f"slope{k}": (x - _lag(x, k)) / k for k in (1, 2, 3, 4)},
        "curv": x - 2 * _lag(x, 1) + _lag(x, 2),
        "season_sin": np.sin(2 * np.pi * wk / 52.18),
        "season_cos": np.cos(2 * np.pi * wk / 52.18),
        "from_peak_c": np.clip(wk - peak, -26, 26) / 26,
        "log_scale": np.full(len(x), np.log(scale)),
        "is_target": np.full(len(x), float(is_target)),
    }
    if s.affect is not None:
        for j in range(s.affect.shape[1]):
            a = s.affect[:, j]
            f[f"affect{j}"] = a
            f[f"affect{j}_d1"] = a - _lag(a, 1)
    return f, x


def targets(x: np.ndarray, k: int) -> np.ndarray:
    """``x_{t+k} - x_t`` (NaN where either is unknown)."""
    return np.r_[x[k:], np.full(k, np.nan)] - x
