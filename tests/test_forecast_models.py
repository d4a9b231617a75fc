"""Models and orchestration: quantile validity, baseline definition, fallback with a logged
reason, horizons/target_end_date, QR solver against statsmodels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from structlog.testing import capture_logs

from analytics.backtest import build_panel
from analytics.forecast import HUB_COLUMNS, forecast_panel
from analytics.hubverse import read_target_csv
from analytics.models import Panel, make_model
from analytics.models.ensemble import CHOSEN
from analytics.quantiles import LEVELS, LEVELS_ARRAY, QuantileError, check_values, repair, validate_levels

STATES = ["06", "36", "48", "12", "17", "53"]


@pytest.fixture(scope="module")
def admissions(data_dir):
    return read_target_csv(data_dir / "flusight" / "target-hospital-admissions.csv", locations=STATES)


@pytest.mark.parametrize("levels,message", [
    ([0.5, 1.2], "1.2"), ([0.0, 0.5, 1.0], "0.0"), ([0.25, 0.5, 0.5, 0.75], "repeated"),
    ([0.75, 0.5, 0.25], "0.75"), ([0.1, 0.5, 0.8], "0.1"), ([], "empty"),
])
def test_bad_levels_are_named(levels, message):
    with pytest.raises(QuantileError, match=message):
        validate_levels(levels)


def test_repair_sorts_and_clips_and_check_names_crossing():
    raw = np.array([[3.0, -1.0, 2.0]])
    with pytest.raises(QuantileError, match="cross"):
        check_values(raw, [0.25, 0.5, 0.75], nonnegative=False)
    with pytest.raises(QuantileError, match="-1.0"):
        check_values(raw, [0.25, 0.5, 0.75])
    fixed = repair(raw)
    assert fixed.tolist() == [[0.0, 2.0, 3.0]]
    check_values(fixed, [0.25, 0.5, 0.75])
    with pytest.raises(QuantileError, match="nan"):
        repair(np.array([[1.0, np.nan]]))


def test_baseline_median_is_last_value_and_symmetric():
    y = pd.DataFrame({"01": [10.0, 14.0, 9.0, 12.0, 20.0, 18.0]}, index=pd.date_range("2023-01-07", periods=6, freq="7D"))
    q = make_model("baseline").fit(Panel(y)).predict([1, 2, 3])["01"]
    assert np.allclose(q[:, LEVELS.index(0.5)], 18.0)
    # spread grows with the horizon and is symmetric (before truncation at 0)
    width = q[:, -1] - q[:, 0]
    assert width[0] < width[1] < width[2]
    assert np.allclose(q[0] - 18.0, -(q[0][::-1] - 18.0))


@pytest.mark.parametrize("model", ["baseline", "glm", "qr", "ets"])
def test_models_give_valid_quantiles_on_real_data(admissions, model):
    panel = build_panel(admissions, "2023-01-07", latency=1)
    preds = make_model(model).fit(panel).predict([1, 2, 3, 4])
    assert set(preds) == set(STATES)
    for q in preds.values():
        assert q.shape == (4, 23) and np.all(np.isfinite(q))


def test_forecast_frame_is_valid_hubverse(admissions):
    panel = build_panel(admissions, "2023-01-07", latency=1)
    assert panel.y.index[-1] == pd.Timestamp("2022-12-31")  # latency hides the reference week
    fc = forecast_panel(panel, "2023-01-07", models=["baseline", "glm", "qr", "ensemble"], target="wk inc flu_admissions")
    assert list(fc.columns) == HUB_COLUMNS
    assert set(fc["model"]) == {"baseline", "glm", "qr", "ensemble"}
    assert sorted(fc["horizon"].unique()) == [0, 1, 2, 3]
    ends = pd.to_datetime(fc["target_end_date"]) - pd.to_datetime(fc["reference_date"])
    assert (ends == pd.to_timedelta(7 * fc["horizon"], unit="D")).all()
    for _, g in fc.groupby(["model", "location", "horizon"]):
        assert len(g) == 23 and g["output_type_id"].tolist() == list(LEVELS)
        v = g["value"].to_numpy()
        assert np.all(v >= 0) and np.all(np.diff(v) >= 0)
    # on weekly data the ensemble is the validated one (analytics.models.ensemble.CHOSEN): the weighted
    # quantile mean of its members, each central interval widened by its calibration factor
    assert CHOSEN is not None
    members = forecast_panel(panel, "2023-01-07", models=list(CHOSEN["members"]))
    m = members.pivot_table(index=["location", "horizon", "output_type_id"], columns="model", values="value").sort_index()
    e = fc[fc.model == "ensemble"].set_index(["location", "horizon", "output_type_id"])["value"].sort_index()
    stack = np.stack([m[c].to_numpy().reshape(-1, len(LEVELS)) for c in CHOSEN["members"]])
    w = np.asarray(CHOSEN["weights"]) / np.sum(CHOSEN["weights"])
    mean = np.tensordot(w, stack, axes=1) if CHOSEN["how"] == "mean" else np.median(stack, axis=0)
    med = mean[:, [LEVELS.index(0.5)]]
    horizon = m.index.get_level_values("horizon").to_numpy()[::len(LEVELS)]  # rows: location x horizon
    factor = np.vstack([np.r_[CHOSEN["calibration"][h], 1.0, CHOSEN["calibration"][h][::-1]] for h in horizon])
    assert np.allclose(e.to_numpy().reshape(-1, len(LEVELS)), repair(med + factor * (mean - med)))
    assert not np.allclose(factor, 1.0)  # the calibration does something
    assert not np.allclose(factor[horizon == 0], factor[horizon == 3])  # and depends on the horizon


def test_daily_ensemble_is_the_median_of_the_per_series_models_with_envelope_tails():
    """The pooled members need weekly data: on a daily panel the ensemble is the median of glm, qr and
    ets at the inner levels and their envelope (min of lower tails, max of upper tails) at <= 0.05 / >= 0.95."""
    idx = pd.date_range("2023-01-01", periods=120, freq="D")
    rng = np.random.default_rng(1)
    y = pd.DataFrame({loc: rng.poisson(40 + 25 * np.sin(np.arange(120) / 9 + i)).astype(float)
                      for i, loc in enumerate(["01", "02", "04"])}, index=idx)
    ref = idx[-1] + pd.Timedelta(days=1)
    fc = forecast_panel(Panel(y, freq="D"), ref, models=["baseline", "ensemble"], horizons=[1, 2, 3])
    members = forecast_panel(Panel(y, freq="D"), ref, models=["glm", "qr", "ets"], horizons=[1, 2, 3])
    assert not fc.attrs["fallbacks"]
    m = members.pivot_table(index=["location", "horizon", "output_type_id"], columns="model", values="value").sort_index()
    e = fc[fc.model == "ensemble"].set_index(["location", "horizon", "output_type_id"])["value"].sort_index()
    level = m.index.get_level_values("output_type_id").to_numpy()
    inner, lo, hi = (level > 0.05) & (level < 0.95), level <= 0.05, level >= 0.95
    mv, ev = m.to_numpy(), e.to_numpy()
    assert np.allclose(ev[inner], np.median(mv[inner], axis=1))
    assert np.allclose(ev[lo], mv[lo].min(axis=1))
    assert np.allclose(ev[hi], mv[hi].max(axis=1))


def test_short_and_constant_series_fall_back_to_baseline_with_reason():
    idx = pd.date_range("2022-01-01", periods=40, freq="7D")
    rng = np.random.default_rng(0)
    y = pd.DataFrame({
        "good": rng.poisson(50 + 30 * np.sin(np.arange(40) / 5)).astype(float),
        "flat": np.full(40, 7.0),
        "short": [np.nan] * 35 + [3.0, 5.0, 4.0, 6.0, 5.0],
    }, index=idx)
    with capture_logs() as logs:
        fc = forecast_panel(Panel(y), idx[-1] + pd.Timedelta(days=7), models=["baseline", "glm", "ets"])
    fb = {(f["model"], f["location"]): f["reason"] for f in fc.attrs["fallbacks"]}
    assert "constant series" in fb[("glm", "flat")]
    assert "only 5 observations" in fb[("glm", "short")]
    assert ("glm", "good") not in fb
    events = [e for e in logs if e["event"] == "series falls back to baseline"]
    assert {(e["model"], e["location"]) for e in events} == set(fb)
    # the fallen-back rows are the baseline's
    g = fc.set_index(["model", "location", "horizon", "output_type_id"])["value"].sort_index()
    assert np.allclose(g.loc["glm", "flat"].to_numpy(), g.loc["baseline", "flat"].to_numpy())
    assert np.allclose(g.loc["baseline", "flat"].to_numpy(), 7.0)


def test_fused_models_need_affect():
    y = pd.DataFrame({"01": np.arange(30.0)}, index=pd.date_range("2022-01-01", periods=30, freq="7D"))
    with pytest.raises(ValueError, match="glm_affect"):
        forecast_panel(Panel(y), "2022-07-30", models=["glm_affect"])
    with pytest.raises(ValueError, match="unknown model 'arima'"):
        forecast_panel(Panel(y), "2022-07-30", models=["arima"])


def test_reference_date_must_follow_data_by_whole_weeks():
    y = pd.DataFrame({"01": np.arange(30.0)}, index=pd.date_range("2022-01-01", periods=30, freq="7D"))
    with pytest.raises(ValueError, match="not a whole number of periods"):
        forecast_panel(Panel(y), "2022-07-27", models=["baseline"])


def test_daily_horizons_1_to_14():
    idx = pd.date_range("2023-01-01", periods=90, freq="D")
    rng = np.random.default_rng(1)
    y = pd.DataFrame({"01": rng.poisson(20 + 10 * np.sin(np.arange(90) / 7)).astype(float)}, index=idx)
    fc = forecast_panel(Panel(y, freq="D"), idx[-1], models=["baseline", "glm"], target="day inc ili")
    assert sorted(fc["horizon"].unique()) == list(range(1, 15))
    d = pd.to_datetime(fc["target_end_date"]) - pd.to_datetime(fc["reference_date"])
    assert (d == pd.to_timedelta(fc["horizon"], unit="D")).all()


def test_irls_quantile_regression_matches_statsmodels():
    from statsmodels.regression.quantile_regression import QuantReg

    from analytics.models.quantreg import quantreg_irls

    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(400), rng.normal(size=(400, 3))])
    y = X @ np.array([1.0, 0.5, -0.2, 0.0]) + rng.standard_t(4, size=400)
    B = quantreg_irls(X, y, LEVELS_ARRAY)
    for i, tau in enumerate([0.05, 0.5, 0.95]):
        j = LEVELS.index(tau)
        ref = QuantReg(y, X).fit(q=tau).params
        loss = lambda b: np.mean(np.maximum(tau * (y - X @ b), (tau - 1) * (y - X @ b)))  # noqa: E731
        assert loss(B[j]) <= loss(ref) + 1e-5


def test_batched_glm_matches_statsmodels(admissions):
    panel = build_panel(admissions, "2023-02-04", latency=1)
    sm = make_model("glm")
    sm.engine = "statsmodels"
    fast = make_model("glm")
    fast.engine = "batched"
    sm.fit(panel)
    fast.fit(panel)
    for k in (1, 3):
        batch = fast._fit_batched(list(fast._data), k)
        for loc in STATES:
            p_sm, cov_sm, a_sm, _ = sm._fit_one(loc, k)
            p_b, cov_b, a_b, _ = batch[loc]
            assert np.allclose(p_b, p_sm, rtol=1e-5, atol=1e-7)
            assert np.allclose(cov_b, cov_sm, rtol=1e-4, atol=1e-9)
            assert a_b == pytest.approx(a_sm, rel=1e-5)
    q_sm = sm.predict([1, 2])
    q_b = fast.predict([1, 2])
    for loc in STATES:
        assert np.allclose(q_sm[loc], q_b[loc], rtol=1e-3)


def test_affect_features_are_standardised_and_winsorised():
    """A covariate far outside its history (a survey signal in a new wave) enters the fused models at
    most 3 sd from the location's mean, so a linear model cannot extrapolate it without bound."""
    from analytics.models.base import AFFECT_Z_LIMIT

    idx = pd.date_range("2022-01-01", periods=60, freq="7D")
    y = pd.DataFrame({"01": np.arange(60.0) + 10})
    a = np.r_[np.sin(np.arange(59)), 40.0]  # the newest value is ~57 sd out
    panel = Panel(y.set_index(idx), affect={"wili": pd.DataFrame({"01": a}, index=idx)})
    z = panel.affect_matrix("01", ["wili"])[:, 0]
    assert z[-1] == AFFECT_Z_LIMIT == 3.0
    assert np.all(np.abs(z) <= AFFECT_Z_LIMIT)
    assert np.corrcoef(z[:-1], a[:-1])[0, 1] > 0.99  # ordinary values keep their shape
