"""Scores of quantile forecasts: WIS (FluSight definition over the quantile levels) with its
dispersion / overprediction / underprediction components, 50/80/95% interval coverage, randomised
PIT values and histograms, and relative WIS against the baseline (geometric mean of pairwise ratios,
as in the FluSight and COVID-19 hub evaluations).

WIS = (1 / (K + 1/2)) * ( 1/2 |y - m| + sum_k (alpha_k / 2) IS_alpha_k ),
IS_alpha = (u - l) + (2/alpha)(l - y)+ + (2/alpha)(y - u)+   for the central (1 - alpha) interval [l, u].
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.quantiles import INTERVALS, validate_levels

KEYS = ["model", "location", "target", "reference_date", "horizon", "target_end_date"]


def wis_components(q: np.ndarray, y: np.ndarray, levels) -> dict[str, np.ndarray]:
    """q: (N, L) quantile values at symmetric ``levels`` (sorted); y: (N,). Returns arrays of length N."""
    lv = validate_levels(levels)
    q = np.asarray(q, dtype=float)
    y = np.asarray(y, dtype=float)
    m_idx = np.flatnonzero(np.isclose(lv, 0.5))
    if m_idx.size == 0:
        raise ValueError("WIS needs the median (quantile level 0.5) among the levels")
    m = q[:, m_idx[0]]
    K = len(lv) // 2
    disp = np.zeros(len(y))
    over = 0.5 * np.maximum(m - y, 0.0)
    under = 0.5 * np.maximum(y - m, 0.0)
    for i in range(K):
        alpha = 2 * lv[i]
        l, u = q[:, i], q[:, len(lv) - 1 - i]
        w = alpha / 2
        disp += w * (u - l)
        over += w * (2 / alpha) * np.maximum(l - y, 0.0)
        under += w * (2 / alpha) * np.maximum(y - u, 0.0)
    denom = K + 0.5
    disp, over, under = disp / denom, over / denom, under / denom
    return {"wis": disp + over + under, "dispersion": disp, "overprediction": over, "underprediction": under}


def coverage(q: np.ndarray, y: np.ndarray, levels, nominal: int) -> np.ndarray:
    lo, hi = INTERVALS[nominal]
    lv = np.asarray(levels)
    i, j = int(np.flatnonzero(np.isclose(lv, lo))[0]), int(np.flatnonzero(np.isclose(lv, hi))[0])
    return (q[:, i] <= y) & (y <= q[:, j])


def pit(q: np.ndarray, y: np.ndarray, levels, seed: int = 0) -> np.ndarray:
    """Randomised PIT: F(y) by linear interpolation between quantiles (uniform within the outer
    tails); where y equals several tied quantiles, a uniform draw between their levels."""
    rng = np.random.default_rng(seed)
    lv = np.r_[0.0, np.asarray(levels, float), 1.0]
    out = np.empty(len(y))
    for n in range(len(y)):
        qq = q[n]
        a, b = int((qq < y[n]).sum()), int((qq <= y[n]).sum())
        if a < b:  # ties: y sits on quantiles a..b-1
            out[n] = rng.uniform(lv[a + 1], lv[b])  # F jumps from level a to level b-1 (padded index +1)
            continue
        if a == 0 or a == len(qq):
            out[n] = rng.uniform(0.0, lv[1]) if a == 0 else rng.uniform(lv[-2], 1.0)
            continue
        lo_q, hi_q = qq[a - 1], qq[a]
        frac = (y[n] - lo_q) / (hi_q - lo_q) if hi_q > lo_q else 0.5
        out[n] = lv[a] + frac * (lv[a + 1] - lv[a])
    return out


def latest_truth(truth: pd.DataFrame) -> pd.DataFrame:
    """The most recent vintage per (location, date) when ``as_of`` is present."""
    if "as_of" in truth.columns:
        truth = truth.sort_values("as_of").drop_duplicates(["location", "date"], keep="last")
    return truth[["location", "date", "value"]]


def score(forecasts: pd.DataFrame, truth: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per forecast (model, location, target, reference_date, horizon) with a known truth:
    wis, components, cover_50/80/95, pit, observed. Forecasts without truth are left out."""
    fc = forecasts.copy()
    for c in ("reference_date", "target_end_date"):
        fc[c] = pd.to_datetime(fc[c])
    wide = fc.pivot_table(index=KEYS, columns="output_type_id", values="value", aggfunc="first").sort_index(axis=1)
    levels = [float(c) for c in wide.columns]
    validate_levels(levels)
    if wide.isna().any().any():
        raise ValueError("some forecasts lack quantile levels that others have; every forecast needs the same levels")
    wide = wide.reset_index()
    t = latest_truth(truth).rename(columns={"date": "target_end_date", "value": "observed"})
    t["target_end_date"] = pd.to_datetime(t["target_end_date"])
    merged = wide.merge(t, on=["location", "target_end_date"], how="inner")
    q = merged[levels].to_numpy()
    y = merged["observed"].to_numpy(dtype=float)
    out = merged[KEYS + ["observed"]].copy()
    for k, v in wis_components(q, y, levels).items():
        out[k] = v
    for nominal in INTERVALS:
        out[f"cover_{nominal}"] = coverage(q, y, levels, nominal)
    out["pit"] = pit(q, y, levels, seed)
    return out


def relative_wis(scores: pd.DataFrame, baseline: str = "baseline") -> pd.Series:
    """Pairwise-tournament relative WIS: theta_i = geometric mean over models j of
    mean WIS_i / mean WIS_j on their common forecasts; scaled so the baseline is 1."""
    keys = ["location", "target", "reference_date", "horizon"]
    w = scores.pivot_table(index=keys, columns="model", values="wis", aggfunc="first")
    models = list(w.columns)
    theta = {}
    for i in models:
        logs = []
        for j in models:
            if i == j:
                logs.append(0.0)
                continue
            both = w[[i, j]].dropna()
            if len(both) and both[j].mean() > 0:
                logs.append(np.log(both[i].mean() / both[j].mean()) if both[i].mean() > 0 else -np.inf)
        theta[i] = float(np.exp(np.mean(logs))) if logs else np.nan
    s = pd.Series(theta, name="rel_wis")
    if baseline in s.index and s[baseline] > 0:
        return s / s[baseline]
    return s * np.nan


def summarise(scores: pd.DataFrame, by: list[str] | None = None, baseline: str = "baseline") -> pd.DataFrame:
    """Mean WIS, components and coverage (and relative WIS within each group) by model [+ ``by``]."""
    by = by or []
    cols = ["wis", "dispersion", "overprediction", "underprediction", "cover_50", "cover_80", "cover_95"]
    agg = scores.groupby(["model", *by])[cols].mean()
    agg["n"] = scores.groupby(["model", *by]).size()
    if by:
        rel = pd.concat({k: relative_wis(g, baseline) for k, g in scores.groupby(by if len(by) > 1 else by[0])},
                        names=[*by, "model"])
        rel = rel.reorder_levels(["model", *by])
        agg["rel_wis"] = rel.reindex(agg.index)
    else:
        agg["rel_wis"] = relative_wis(scores, baseline).reindex(agg.index)
    return agg.reset_index()


def pit_histogram(scores: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Share of PIT values per bin, by model (flat ~ calibrated; U-shape = intervals too narrow)."""
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for model, g in scores.groupby("model"):
        counts, _ = np.histogram(g["pit"].to_numpy(), bins=edges)
        for b in range(bins):
            rows.append({"model": model, "bin_lo": edges[b], "bin_hi": edges[b + 1], "share": counts[b] / max(len(g), 1)})
    return pd.DataFrame(rows)
