"""Forecast exceedance probabilities from quantile forecasts."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics.exceedance import exceedance_from_forecasts, exceedance_probability

LEVELS = np.array([0.01, 0.025] + [round(0.05 * k, 2) for k in range(1, 20)] + [0.975, 0.99])  # FluSight's 23


def test_levels_are_flusight():
    assert LEVELS.size == 23 and LEVELS[11] == 0.5


def test_normal_forecast_recovers_tail_probabilities():
    values = stats.norm.ppf(LEVELS, loc=100, scale=10)
    # exactly at a quantile: 1 - level
    assert exceedance_probability(LEVELS, values, values[18]) == pytest.approx(1 - LEVELS[18])
    # between quantiles: linear CDF interpolation, close to the true normal tail
    for x in (95.0, 110.0, 118.0):
        assert exceedance_probability(LEVELS, values, x) == pytest.approx(stats.norm.sf(x, 100, 10), abs=0.01)
    # beyond the 0.99 quantile: exponential tail, decreasing, below 1%
    p1 = exceedance_probability(LEVELS, values, 125.0)
    p2 = exceedance_probability(LEVELS, values, 135.0)
    assert 0 < p2 < p1 < 0.01
    # below the 0.01 quantile: above 99%; negative thresholds are always exceeded by counts
    assert 0.99 < exceedance_probability(LEVELS, values, 70.0) < 1
    assert exceedance_probability(LEVELS, values, -1.0) == 1.0


def test_tail_rate_matches_outer_quantiles():
    values = np.array([0.0, 10.0, 20.0])
    levels = np.array([0.1, 0.5, 0.9])
    # upper tail: scale = (20 - 10) / log(0.5 / 0.1) ; P(Y > 30) = 0.1 * exp(-10 / scale) = 0.1 * 0.1 ... = 0.02
    scale = 10 / math.log(0.5 / 0.1)
    assert exceedance_probability(levels, values, 30.0) == pytest.approx(0.1 * math.exp(-10 / scale))
    # inside: halfway between the 0.5 and 0.9 quantiles -> CDF 0.7
    assert exceedance_probability(levels, values, 15.0) == pytest.approx(0.3)


def test_point_mass_plateau():
    # many levels at 0 (a forecast of "probably zero"): P(Y > 0) = 1 - highest level at 0
    levels = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
    values = np.array([0.0, 0.0, 0.0, 2.0, 5.0])
    assert exceedance_probability(levels, values, 0.0) == pytest.approx(0.5)
    assert exceedance_probability(levels, values, 1.0) == pytest.approx(1 - (0.5 + 0.25 * 0.5))


@pytest.mark.parametrize("levels,values,thr,fragment", [
    ([0.1, 0.5, 0.9], [1, 3, 2], 2, "cross"),
    ([0.1, 0.5, 1.0], [1, 2, 3], 2, "between 0 and 1"),
    ([0.1, 0.5], [1, 2, 3], 2, "equal length"),
    ([0.1, 0.5, 0.9], [1, np.nan, 3], 2, "finite"),
    ([0.1, 0.5, 0.5], [1, 2, 3], 2, "duplicate"),
    ([0.1, 0.5, 0.9], [1, 2, 3], np.nan, "threshold"),
])
def test_bad_quantiles_are_named(levels, values, thr, fragment):
    with pytest.raises(ValueError, match=fragment):
        exceedance_probability(levels, values, thr)


def test_frame_helper_over_forecasts_rows():
    rows = []
    for loc, mean in (("06", 100.0), ("36", 40.0), ("48", 10.0)):
        for h in (0, 1):
            for lv, v in zip(LEVELS, stats.norm.ppf(LEVELS, loc=mean * (1 + h), scale=10)):
                rows.append({"reference_date": "2023-01-07", "horizon": h, "target": "wk inc flu hosp",
                             "target_end_date": "2023-01-14", "location": loc, "output_type": "quantile",
                             "output_type_id": lv, "value": max(v, 0.0), "model": "glm_nb"})
    fc = pd.DataFrame(rows)
    out = exceedance_from_forecasts(fc, {"06": 190.0, "36": 40.0}, horizon=1)
    assert set(out["location"]) == {"06", "36"}  # no threshold for 48: skipped
    got = out.set_index("location")["probability"]
    assert got["06"] == pytest.approx(stats.norm.sf(190, 200, 10), abs=0.01)
    assert got["36"] > 0.99
    assert out.set_index("location").loc["06", "median"] == pytest.approx(200.0)
    with pytest.raises(ValueError, match="output_type_id"):
        exceedance_from_forecasts(fc.drop(columns=["output_type_id"]), 1.0)
