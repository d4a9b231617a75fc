"""Scoring: WIS against hand-computed values and the pinball-loss identity, coverage, PIT,
relative WIS."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.quantiles import LEVELS, LEVELS_ARRAY, QuantileError
from analytics.scoring import coverage, pit, relative_wis, score, summarise, wis_components


def test_wis_hand_computed_single_interval():
    # levels 0.25/0.5/0.75, forecast (4, 6, 8), observed 10:
    # median term 0.5*|10-6| = 2 ; 50% interval: (8-4) + 2/0.5*(10-8) = 12, weight 0.25 -> 3 ; / (K + 0.5) = 1.5
    c = wis_components(np.array([[4.0, 6.0, 8.0]]), np.array([10.0]), [0.25, 0.5, 0.75])
    assert c["wis"][0] == pytest.approx(5 / 1.5)
    assert c["dispersion"][0] == pytest.approx(1.0 / 1.5)
    assert c["underprediction"][0] == pytest.approx(4.0 / 1.5)
    assert c["overprediction"][0] == 0.0


def test_wis_hand_computed_overprediction_and_inside():
    c = wis_components(np.array([[4.0, 6.0, 8.0], [4.0, 6.0, 8.0]]), np.array([1.0, 5.0]), [0.25, 0.5, 0.75])
    # y=1: median 0.5*5 = 2.5 ; interval 4 + 4*(4-1) = 16 -> *0.25 = 4 ; total 6.5/1.5
    # y=5: median 0.5 ; interval 4 -> 1 ; total 1.5/1.5 = 1
    assert c["wis"] == pytest.approx([6.5 / 1.5, 1.0])
    assert c["overprediction"][0] == pytest.approx((2.5 + 3.0) / 1.5)


def test_wis_equals_mean_pinball_identity_23_levels():
    rng = np.random.default_rng(0)
    q = np.sort(rng.gamma(3, 20, size=(50, 23)), axis=1)
    y = rng.gamma(3, 20, size=50)
    wis = wis_components(q, y, LEVELS)["wis"]
    r = y[:, None] - q
    pinball = np.maximum(LEVELS_ARRAY * r, (LEVELS_ARRAY - 1) * r).sum(axis=1) / (11 + 0.5)
    assert wis == pytest.approx(pinball)


def test_wis_rejects_levels_without_partner():
    with pytest.raises(QuantileError, match="0.3"):
        wis_components(np.array([[1.0, 2.0, 3.0]]), np.array([2.0]), [0.3, 0.5, 0.75])


def test_coverage_bounds_inclusive():
    q = np.tile(np.arange(23, dtype=float), (4, 1))  # value = index of the level
    y = np.array([6.0, 16.0, 17.0, 5.5])  # 0.25 -> idx 6, 0.75 -> idx 16
    assert coverage(q, y, LEVELS, 50).tolist() == [True, True, False, False]
    assert coverage(q, y, LEVELS, 95).tolist() == [True, True, True, True]  # 0.025 -> 1, 0.975 -> 21


def test_pit_uniform_for_calibrated_forecasts():
    rng = np.random.default_rng(2)
    from scipy import stats
    mu = rng.uniform(50, 500, 2000)
    q = stats.norm.ppf(LEVELS_ARRAY[None, :], loc=mu[:, None], scale=10)
    y = rng.normal(mu, 10)
    p = pit(q, y, LEVELS)
    hist = np.histogram(p, bins=10, range=(0, 1))[0] / len(p)
    assert np.all(np.abs(hist - 0.1) < 0.03)
    wide = pit(q, mu + 0.0, LEVELS)  # observation at the median -> PIT 0.5
    assert wide == pytest.approx(0.5)


def _hub(model, values_by_loc, ref="2023-01-07"):
    rows = []
    for loc, med in values_by_loc.items():
        for lv in LEVELS:
            rows.append({"reference_date": ref, "horizon": 1, "target": "wk inc x", "target_end_date": "2023-01-14",
                         "location": loc, "output_type": "quantile", "output_type_id": lv,
                         "value": med + (lv - 0.5) * 20, "model": model})
    return pd.DataFrame(rows)


def test_score_joins_truth_and_relative_wis_against_baseline():
    fc = pd.concat([_hub("baseline", {"01": 100, "02": 50}), _hub("good", {"01": 120, "02": 60})])
    truth = pd.DataFrame({"location": ["01", "02"], "date": pd.to_datetime(["2023-01-14"] * 2), "value": [120.0, 60.0]})
    s = score(fc, truth)
    assert len(s) == 4 and set(s.columns) >= {"wis", "cover_50", "cover_95", "pit", "observed"}
    rel = relative_wis(s)
    wis = s.groupby("model")["wis"].mean()
    assert rel["baseline"] == 1.0
    assert rel["good"] == pytest.approx(wis["good"] / wis["baseline"])
    summ = summarise(s, ["horizon"]).set_index("model")
    assert summ.loc["good", "rel_wis"] == pytest.approx(rel["good"])


def test_relative_wis_is_pairwise_geometric_mean():
    base = {"location": "01", "target": "t", "horizon": 0}
    rows = []
    for i, d in enumerate(pd.date_range("2023-01-07", periods=2, freq="7D")):
        for m, w in {"baseline": 10.0, "a": 5.0, "b": 20.0}.items():
            rows.append({**base, "reference_date": d, "model": m, "wis": w})
    s = pd.DataFrame(rows)
    rel = relative_wis(s)
    # theta_a = (5/10 * 5/5 * 5/20) ** (1/3); theta_base = (1 * 10/5 * 10/20) ** (1/3) = 1
    assert rel["a"] == pytest.approx((0.5 * 0.25) ** (1 / 3))
    assert rel["b"] == pytest.approx((2.0 * 4.0) ** (1 / 3))
