"""Forecast exceedance: the probability that a forecast target exceeds a threshold.

A quantile forecast (levels tau_1 < ... < tau_K, values q_1 <= ... <= q_K; FluSight uses 23
levels from 0.01 to 0.99) defines the predictive CDF at K points. Between them the CDF is
interpolated linearly (a piecewise-uniform density). Beyond the extreme quantiles exponential
tails are used whose rate matches the two outermost quantiles on each side, e.g. above q_K
``P(Y > x) = (1 - tau_K) exp(-(x - q_K) / s)`` with
``s = (q_K - q_{K-1}) / log((1 - tau_{K-1}) / (1 - tau_K))``; when the outer quantiles coincide
the tail has no mass beyond them. Counts are non-negative, so ``P(Y > x) = 1`` for x < 0.
Plateaus (several levels with the same value) are point masses: the CDF jumps there.

``exceedance_probability(levels, values, threshold)`` returns ``P(Y > threshold)``;
``exceedance_from_forecasts(forecasts, thresholds)`` applies it to rows of the ``forecasts``
table (hubverse columns).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from affectwatch.logs import get_logger

log = get_logger(__name__)

FORECAST_KEYS = ("reference_date", "horizon", "target", "target_end_date", "location", "model")


def _check(levels: np.ndarray, values: np.ndarray, threshold: float) -> None:
    if levels.shape != values.shape or levels.ndim != 1:
        raise ValueError(
            f"quantile_levels and quantile_values must be 1-d of equal length; got {levels.shape} and {values.shape}"
        )
    if levels.size < 2:
        raise ValueError(f"at least 2 quantiles are needed; got {levels.size}")
    bad = ~np.isfinite(levels) | (levels <= 0) | (levels >= 1)
    if bad.any():
        raise ValueError(f"quantile levels must lie strictly between 0 and 1; bad: {levels[bad].tolist()}")
    if not np.isfinite(values).all():
        raise ValueError(f"quantile values must be finite; bad: {values[~np.isfinite(values)].tolist()}")
    order = np.argsort(levels)
    lv, vv = levels[order], values[order]
    if np.any(np.diff(lv) == 0):
        raise ValueError(f"duplicate quantile levels: {sorted(set(lv[1:][np.diff(lv) == 0].tolist()))}")
    crossing = np.flatnonzero(np.diff(vv) < 0)
    if crossing.size:
        pairs = [(float(lv[i]), float(vv[i]), float(lv[i + 1]), float(vv[i + 1])) for i in crossing[:3]]
        raise ValueError(
            "quantiles cross (value decreases as the level increases): "
            + "; ".join(f"level {a} -> {b} but level {c} -> {d}" for a, b, c, d in pairs)
        )
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number; got {threshold!r}")


def _cdf(lv: np.ndarray, vv: np.ndarray, x: float) -> float:
    """P(Y <= x) from sorted levels lv and values vv (see module docstring)."""
    if x < 0:
        return 0.0
    if x < vv[0]:
        # lower exponential tail through the two lowest distinct quantiles
        nxt = np.flatnonzero(vv > vv[0])
        if nxt.size == 0:
            return 0.0
        j = nxt[0]
        scale = (vv[j] - vv[0]) / np.log(lv[j] / lv[0])
        return float(lv[0] * np.exp(-(vv[0] - x) / scale))
    if x >= vv[-1]:
        if x == vv[-1]:
            return float(lv[-1])
        prv = np.flatnonzero(vv < vv[-1])
        if prv.size == 0:
            return 1.0
        j = prv[-1]
        scale = (vv[-1] - vv[j]) / np.log((1 - lv[j]) / (1 - lv[-1]))
        return float(1.0 - (1 - lv[-1]) * np.exp(-(x - vv[-1]) / scale))
    # inside: right-continuous CDF, linear between consecutive distinct values
    k = int(np.searchsorted(vv, x, side="right")) - 1  # last index with vv[k] <= x
    if vv[k] == x:
        return float(lv[k])
    nxt = k + 1
    first_nxt = int(np.searchsorted(vv, vv[nxt], side="left"))  # lowest level at the next value
    lo_level = lv[k]
    hi_level = lv[first_nxt]
    return float(lo_level + (hi_level - lo_level) * (x - vv[k]) / (vv[nxt] - vv[k]))


def exceedance_probability(
    quantile_levels: Sequence[float], quantile_values: Sequence[float], threshold: float
) -> float:
    """P(Y > threshold) from a quantile forecast (interpolated CDF with exponential tails)."""
    lv = np.asarray(quantile_levels, dtype=float)
    vv = np.asarray(quantile_values, dtype=float)
    threshold = float(threshold)
    _check(lv, vv, threshold)
    order = np.argsort(lv)
    return float(np.clip(1.0 - _cdf(lv[order], vv[order], threshold), 0.0, 1.0))


def _threshold_lookup(thresholds) -> callable:
    if isinstance(thresholds, (int, float)):
        value = float(thresholds)
        return lambda loc: value
    if isinstance(thresholds, pd.DataFrame):
        missing = [c for c in ("location", "threshold") if c not in thresholds.columns]
        if missing:
            raise ValueError(f"thresholds frame is missing column(s): {', '.join(missing)}")
        thresholds = dict(zip(thresholds["location"].astype(str), thresholds["threshold"].astype(float)))
    if isinstance(thresholds, Mapping):
        table = {str(k): float(v) for k, v in thresholds.items()}
        return lambda loc: table.get(str(loc))
    raise TypeError(f"thresholds must be a number, a mapping location -> threshold or a frame; got {type(thresholds).__name__}")


def exceedance_from_forecasts(
    forecasts: pd.DataFrame,
    thresholds: float | Mapping[str, float] | pd.DataFrame,
    horizon: int | None = None,
) -> pd.DataFrame:
    """Exceedance probability per forecast (rows of the ``forecasts`` table, hubverse columns).

    Returns one row per (reference_date, horizon, target, target_end_date, location, model)
    with ``threshold``, ``median`` and ``probability``. Locations without a threshold are
    skipped (logged). ``horizon`` keeps only that horizon (e.g. 1 for next week).
    """
    needed = ["reference_date", "horizon", "target", "target_end_date", "location", "output_type",
              "output_type_id", "value"]
    missing = [c for c in needed if c not in forecasts.columns]
    if missing:
        raise ValueError(
            f"forecasts frame is missing column(s): {', '.join(missing)}; columns available: {', '.join(map(str, forecasts.columns))}"
        )
    fc = forecasts[forecasts["output_type"] == "quantile"]
    if horizon is not None:
        fc = fc[fc["horizon"] == horizon]
    keys = [k for k in FORECAST_KEYS if k in fc.columns]
    lookup = _threshold_lookup(thresholds)
    rows = []
    skipped = set()
    for key, grp in fc.groupby(keys, sort=True, dropna=False):
        rec = dict(zip(keys, key))
        thr = lookup(rec["location"])
        if thr is None:
            skipped.add(rec["location"])
            continue
        lv = grp["output_type_id"].to_numpy(dtype=float)
        vv = grp["value"].to_numpy(dtype=float)
        try:
            prob = exceedance_probability(lv, vv, thr)
        except ValueError as exc:
            raise ValueError(f"forecast {rec}: {exc}") from exc
        order = np.argsort(lv)
        rec.update(threshold=thr, median=float(np.interp(0.5, lv[order], vv[order])), probability=prob)
        rows.append(rec)
    if skipped:
        log.info("no threshold for locations; skipped", locations=sorted(map(str, skipped)))
    return pd.DataFrame(rows, columns=[*keys, "threshold", "median", "probability"])
