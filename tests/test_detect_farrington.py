"""Farrington flexible / Noufaily: GLM pieces against statsmodels, and behaviour on a seasonal series."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from analytics.detect import detect
from analytics.detectors.farrington import _fit, _reference


def seasonal_series(years=6, seed=11, outbreak=(290, 294), size=3.0):
    """Weekly Poisson counts with yearly seasonality; `size` x the mean added in outbreak weeks."""
    rng = np.random.default_rng(seed)
    t = np.arange(years * 52)
    mu = np.exp(1.8 + 0.6 * np.cos(2 * np.pi * t / 52))
    y = rng.poisson(mu).astype(float)
    a, b = outbreak
    y[a:b] += rng.poisson(size * mu[a:b])
    return pd.DataFrame({"series": "s", "t": t + 1, "observed": y}), mu


def test_reweighted_quasi_poisson_fit_matches_statsmodels():
    df, _ = seasonal_series()
    y = df["observed"].to_numpy()
    t0 = 280
    rel, level = _reference(52, 5, 3, 1, 3)
    assert rel.size == 35 and rel.min() == -5 * 52 - 3 and rel.max() == -52 + 3
    yref = y[t0 + rel].copy()
    yref[[3, 10]] += 25  # two past "outbreak" values that the reweighting must down-weight
    X = np.column_stack([np.ones(rel.size), rel / 52])
    x0 = np.array([1.0, 0.0])
    mu0, var_eta, phi, beta, cov = _fit(yref[None, :], X, x0, reweight=True, weights_threshold=2.58)

    # the same steps with statsmodels (Farrington et al. 1996 / Noufaily et al. 2013)
    first = sm.GLM(yref, X, family=sm.families.Poisson()).fit()
    m = first.mu
    phi1 = max(1.0, float(np.sum((yref - m) ** 2 / m) / (rel.size - 2)))
    h = first.get_hat_matrix_diag()
    r = 1.5 * (yref ** (2 / 3) - m ** (2 / 3)) / (m ** (1 / 6) * np.sqrt(phi1 * (1 - h)))
    omega = np.where(r > 2.58, r ** -2.0, 1.0)
    omega *= rel.size / omega.sum()
    assert (omega < 1).sum() >= 2  # the inflated values were down-weighted
    second = sm.GLM(yref, X, family=sm.families.Poisson(), var_weights=omega).fit()
    phi2 = max(1.0, float(np.sum(omega * (yref - second.mu) ** 2 / second.mu) / (rel.size - 2)))
    assert beta[0] == pytest.approx(second.params, rel=1e-6)
    assert mu0[0] == pytest.approx(np.exp(second.params[0]), rel=1e-6)
    assert phi[0] == pytest.approx(phi2, rel=1e-6)
    assert var_eta[0] == pytest.approx(phi2 * second.cov_params()[0, 0], rel=1e-5)


def test_noufaily_reference_levels():
    rel, level = _reference(52, 2, 3, 10, 26)
    assert rel.min() == -(2 * 52 + 3) and rel.max() == -27  # the 26 most recent weeks are left out
    # level 0 = the 7-week windows around the same week of past years
    assert set(rel[level == 0] % 52) == {0, 1, 2, 3, 49, 50, 51}
    assert sorted(np.unique(level)) == list(range(10))


@pytest.mark.parametrize("method", ["farrington", "noufaily"])
def test_alarms_at_the_outbreak_and_not_before(method):
    # 7 years of weekly Poisson counts; outbreak (+3x the mean) in weeks 341..344
    df, mu = seasonal_series(years=7, outbreak=(340, 344))
    out = detect(df, method, period=52)
    # needs one full year + w before the first verdict
    assert out["reason"].iloc[: 52 + 3].eq("insufficient_baseline").all()
    during = out.iloc[340:344]
    assert during["alarm"].sum() >= 3
    # no alarm in the 8 weeks before the outbreak
    assert not out["alarm"].iloc[332:340].any()
    # with the full b = 5 years of reference data (from week 263 on): at most alpha = 5% of the
    # outbreak-free weeks alarm, and only at values that are extreme under the true generating
    # mean (P(Y >= y) < 0.05) — pure Poisson data do contain a few such values
    before = out.iloc[263:340]
    assert before["alarm"].mean() <= 0.05, before[before["alarm"]]
    false_alarms = before.index[before["alarm"]]
    assert (stats.poisson.sf(df["observed"].to_numpy()[false_alarms] - 1, mu[false_alarms]) < 0.05).all()
    # the expected value follows the seasonal mean (median error under 20%)
    ratio = before["expected"].to_numpy() / mu[263:340]
    assert np.median(np.abs(ratio - 1)) < 0.2
    row = out.iloc[341]
    assert row["observed"] > row["threshold"] and row["p_value"] < 0.05 and row["level"] in ("red", "yellow")


def test_too_few_recent_cases_blocks_alarm():
    # a series of zeros with a single 3: it exceeds a threshold of 0, but 3 < 5 cases in 4 weeks
    y = np.zeros(120)
    y[100] = 3
    y[110:114] = [2, 2, 2, 2]  # 4 then 6 then 8 cases in the last 4 weeks at indices 111..113
    out = detect(pd.DataFrame({"series": "z", "t": range(1, 121), "observed": y}), "farrington")
    assert not out["alarm"].iloc[100] and out["reason"].iloc[100] == "too_few_recent_cases"
    assert out["reason"].iloc[110:112].eq("too_few_recent_cases").all() and not out["alarm"].iloc[110:112].any()
    assert out["alarm"].iloc[112:114].all()
    assert out["reason"].iloc[101] is None  # no alarm was suppressed there (observed 0)


def test_uses_available_years_up_to_b():
    df, _ = seasonal_series(years=3, outbreak=(140, 144))
    out = detect(df, "farrington", period=52)
    assert out["reason"].iloc[:55].eq("insufficient_baseline").all()
    assert out["expected"].iloc[55:].notna().all()
    assert out["alarm"].iloc[140:144].any()


def test_evaluate_last_only():
    df, _ = seasonal_series()
    full = detect(df, "noufaily")
    tail = detect(df, "noufaily", last=10)
    assert tail["expected"].iloc[:-10].isna().all()
    assert np.allclose(tail["expected"].iloc[-10:], full["expected"].iloc[-10:])
