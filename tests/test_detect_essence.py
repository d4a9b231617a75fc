"""ESSENCE EWMA (hand-computed), adaptive regression (against statsmodels OLS) and the switch."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from analytics.detect import detect


def test_ewma_hand_computed_single_smoothing():
    y = [2, 4, 2, 4, 2, 4, 2, 3, 3, 9]
    df = pd.DataFrame({"series": "a", "t": range(1, 11), "observed": y})
    out = detect(df, "ewma", smoothing=0.4, baseline=7, guard=2, min_baseline=7)
    # first test day: index 9 (7 baseline values + 2 guard values before it)
    assert out["reason"].iloc[:9].eq("insufficient_baseline").all()
    w = 0.4
    z = 2.0  # z_1 = y_1
    for v in y[1:]:
        z = w * v + (1 - w) * z  # 2.8, 2.48, 3.088, 2.6528, 3.19168, 2.715008, 2.8290048, 2.8974029, 5.3384417
    assert z == pytest.approx(5.3384417, abs=1e-6)
    mean, sd, n = 20 / 7, math.sqrt(8 / 7), 7  # baseline y[0..6]
    corr = math.sqrt(w / (2 - w) + 1 / n - 2 * (1 - w) ** 3 * (1 - (1 - w) ** n) / n)  # sqrt(0.33287) = 0.57695
    t95 = stats.t.ppf(0.95, n - 1)  # 1.94318
    const = (0.1289 - (0.2414 - 0.1826 * (1 - w) ** 4) * math.log(0.5)) * (w / t95)  # 0.0576
    floor = (w / t95) * (1 + 0.5 * (1 - w) ** 2)  # 0.2429
    sigma = max(floor, sd * corr + const)  # 0.6168 + 0.0576 = 0.6744
    stat = (z - mean) / sigma  # 2.4813 / 0.6744 = 3.679
    row = out.iloc[9]
    assert row["expected"] == pytest.approx(mean)
    assert row["statistic"] == pytest.approx(stat)
    assert row["p_value"] == pytest.approx(stats.t.sf(stat, n - 1))  # ~0.005
    assert row["level"] == "red" and bool(row["alarm"])
    # threshold: the y that brings z to mean + t95 * sigma from z_{t-1}
    assert row["threshold"] == pytest.approx((mean + t95 * sigma - (1 - w) * 2.8974029) / w, rel=1e-6)


def test_ewma_reports_the_smaller_p_of_both_smoothings():
    rng = np.random.default_rng(3)
    y = rng.poisson(10, 60).astype(float)
    y[-1] = 30
    df = pd.DataFrame({"series": "a", "t": range(1, 61), "observed": y})
    both = detect(df, "ewma")
    p04 = detect(df, "ewma", smoothing=0.4)["p_value"]
    p09 = detect(df, "ewma", smoothing=0.9)["p_value"]
    ok = both["p_value"].notna()
    assert np.allclose(both["p_value"][ok], np.minimum(p04[ok], p09[ok]))
    assert both["level"].iloc[-1] == "red"
    # the ESSENCE ramp-up: a test value from index 13 on (11 baseline values + 2 guard values)
    assert both["reason"].iloc[:13].eq("insufficient_baseline").all() and both["reason"].iloc[13] is None


def _daily_series(days=60, seed=1):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-03-01", periods=days, freq="D")
    dow_effect = np.array([12, 10, 9, 9, 8, 4, 5])[dates.dayofweek]
    y = rng.poisson(dow_effect + 0.05 * np.arange(days)).astype(float)
    return pd.DataFrame({"series": "s", "t": np.arange(1, days + 1), "date": dates.date, "observed": y}), dates, y


def test_regression_matches_statsmodels_ols():
    df, dates, y = _daily_series()
    out = detect(df, "regression")
    i = 50  # full 28-day baseline: y[20..47], guard 48-49, test day 50
    base = np.arange(i - 2 - 28, i - 2)
    X = pd.DataFrame({"time": np.arange(1, 29, dtype=float)})
    for d in range(6):  # Monday..Saturday dummies, Sunday reference
        X[f"d{d}"] = (dates[base].dayofweek == d).astype(float)
    fit = sm.OLS(y[base], sm.add_constant(X)).fit()
    x0 = pd.DataFrame({"const": [1.0], "time": [28 + 2 + 1.0],
                       **{f"d{d}": [float(dates[i].dayofweek == d)] for d in range(6)}})
    pred = fit.get_prediction(x0)
    expected = max(0.0, float(pred.predicted_mean[0]))
    se_obs = math.sqrt(fit.mse_resid + float(pred.se_mean[0]) ** 2)  # standard error of prediction
    stat = (y[i] - expected) / se_obs
    row = out.iloc[i]
    assert row["expected"] == pytest.approx(expected)
    assert row["statistic"] == pytest.approx(stat)
    assert row["p_value"] == pytest.approx(stats.t.sf(stat, 28 - 8))


def test_switch_uses_regression_only_when_adjusted_r2_is_high():
    df, dates, y = _daily_series(days=80)
    reg = detect(df, "regression")
    ewma = detect(df, "ewma", smoothing=0.4)
    sw = detect(df, "switch")
    i = 70
    base = np.arange(i - 30, i - 2)
    X = np.column_stack([np.ones(28), np.arange(1, 29)] + [(dates[base].dayofweek == d) for d in range(6)]).astype(float)
    r2_adj = sm.OLS(y[base], X).fit().rsquared_adj
    chosen = reg if r2_adj >= 0.60 else ewma
    assert sw["p_value"].iloc[i] == pytest.approx(chosen["p_value"].iloc[i])
    # a flat noisy series: no day-of-week structure, low R^2 -> EWMA everywhere
    rng = np.random.default_rng(7)
    flat = pd.DataFrame({"series": "f", "t": range(1, 81), "date": pd.date_range("2025-01-01", periods=80).date,
                         "observed": rng.poisson(3, 80)})
    assert np.allclose(detect(flat, "switch")["p_value"].iloc[40:], detect(flat, "ewma", smoothing=0.4)["p_value"].iloc[40:])


def test_weekly_regression_has_no_day_of_week_terms():
    # weekly dates: trend-only model (p = 2, df = n - 2)
    y = np.arange(40, dtype=float) + np.tile([0.0, 1.0], 20)
    df = pd.DataFrame({"series": "w", "t": range(1, 41), "date": pd.date_range("2024-01-06", periods=40, freq="7D").date,
                       "observed": y})
    out = detect(df, "regression")
    i = 35
    base = np.arange(i - 30, i - 2)
    fit = sm.OLS(y[base], sm.add_constant(np.arange(1, 29, dtype=float))).fit()
    assert out["expected"].iloc[i] == pytest.approx(fit.params[0] + fit.params[1] * 31)
