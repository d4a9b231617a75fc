"""Leave-one-season-out choice of the ensemble (analytics.validation): the best members win, the
calibration factors make the intervals cover their nominal level, a held-out fold is never used to
choose its own ensemble, and cached fold forecasts go stale when the forecasting code changes."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from analytics import validation as V
from analytics.models.ensemble import calibrate_by_horizon
from analytics.quantiles import LEVELS

Z = norm.ppf(np.asarray(LEVELS))


def _folds(n_per_fold=400, folds=("a", "b", "c"), seed=0):
    rng = np.random.default_rng(seed)
    n = n_per_fold * len(folds)
    centre = rng.uniform(50, 500, n)
    sd = 0.1 * centre
    y = centre + sd * rng.standard_normal(n)
    keys = pd.DataFrame({"fold": np.repeat(folds, n_per_fold), "horizon": np.tile(np.arange(4), n // 4)})
    q = {
        "baseline": centre[:, None] + 3 * sd[:, None] * Z,  # right centre, far too wide
        "gbq": centre[:, None] + 0.5 * sd[:, None] * Z,  # right centre, half as wide as it should be
        "qar": centre[:, None] + 3 * sd[:, None] + sd[:, None] * Z,  # biased upwards
        "glm": centre[:, None] + 2.5 * sd[:, None] + sd[:, None] * Z,  # biased upwards too (no pair cancels out)
        "qr": centre[:, None] + 4 * sd[:, None] + sd[:, None] * Z,
        "ets": centre[:, None] + 3.5 * sd[:, None] + sd[:, None] * Z,
    }
    return keys, q, y


def test_the_best_member_is_chosen_and_its_intervals_calibrated():
    keys, q, y = _folds(n_per_fold=1600)  # 400 forecasts per fold and horizon
    chosen = V.choose(keys, q, y)
    assert chosen["members"] == ["gbq"]
    f = np.asarray(chosen["calibration"])
    assert f.shape == (4, len(LEVELS) // 2)  # one list of factors per horizon
    assert np.all((f > 1.7) & (f < 2.6)), f  # the member's intervals are half as wide as they should be
    assert np.all(np.diff(f, axis=1) <= 1e-9)  # outer intervals widen at least as much as inner ones


def test_each_horizon_gets_its_own_calibration():
    """Intervals right at horizon 0 and three times too narrow at horizon 3: horizon 0 is left alone
    and horizon 3 widened about threefold; the intervals then cover nominally at every horizon."""
    keys, q, y = _folds(n_per_fold=1600)
    centre = q["gbq"][:, [11]]
    sd = 0.1 * centre[:, 0]
    narrow = np.where(keys["horizon"].to_numpy() == 3, 1 / 3, 1.0)
    q["gbq"] = centre + (sd * narrow)[:, None] * Z
    chosen = V.choose(keys, q, y)
    f = np.asarray(chosen["calibration"])
    assert np.all(np.abs(f[0] - 1.0) <= 0.15), f[0]
    assert np.all((f[3] > 2.4) & (f[3] < 3.6)), f[3]
    cal = calibrate_by_horizon(q["gbq"], keys["horizon"].to_numpy(), chosen)
    lo, hi = LEVELS.index(0.1), LEVELS.index(0.9)
    for h in range(4):
        m = (keys["horizon"] == h).to_numpy()
        cover = np.mean((cal[m, lo] <= y[m]) & (y[m] <= cal[m, hi]))
        assert 0.75 <= cover <= 0.85, (h, cover)


def test_a_pair_is_weighted_by_its_members_past_performance():
    """Two members biased in opposite directions, one three times as far: the weighted mean that
    cancels the bias (weight 0.75 on the nearer one) is what the validation picks, not equal weights."""
    keys, q, y = _folds()
    sd = 0.1 * (q["gbq"][:, 11])
    q = {"baseline": q["baseline"], "gbq": q["gbq"][:, [11]] - 1.0 * sd[:, None] + 0.8 * sd[:, None] * Z,
         "qar": q["gbq"][:, [11]] + 3.0 * sd[:, None] + 0.8 * sd[:, None] * Z}
    y = q["gbq"][:, 11] + 1.0 * sd + 0.1 * sd * np.random.default_rng(3).standard_normal(len(y))
    chosen = V.choose(keys, q, y)
    assert chosen["members"] == ["gbq", "qar"] and chosen["how"] == "mean"
    assert chosen["weights"] in ([0.7, 0.3], [0.8, 0.2]), chosen


def test_a_held_out_fold_does_not_choose_its_own_ensemble():
    keys, q, y = _folds()
    before = V.choose(keys, q, y, holdout="c")
    # in fold "c" only, a biased member becomes perfect: the choice that leaves "c" out cannot change
    c = (keys["fold"] == "c").to_numpy()
    q["qar"][c] = y[c, None] + 0.01 * Z
    assert V.choose(keys, q, y, holdout="c") == before
    tab, _ = V.table(keys, q, y)
    assert {"ensemble (before)", "ensemble (LOSO)", "cover_50", "cover_80", "cover_95"} <= set(tab.columns)
    assert tab.loc["c", "ensemble (LOSO)"] > tab.loc["c", "qar"]  # fold c got the choice made on a and b


def test_cached_fold_forecasts_are_keyed_by_members_and_code(tmp_path, monkeypatch):
    tag = V.models_tag(V.MEMBERS)
    assert tag == V.models_tag(V.MEMBERS) and tag != V.models_tag(("qr",))
    calls = []

    def fake_forecast(target, ref, extra, source, models):
        calls.append(ref)
        return pd.DataFrame({"reference_date": [pd.Timestamp(ref).date()], "model": ["qr"], "value": [1.0]})

    monkeypatch.setattr(V, "_forecast_ref", fake_forecast)
    first = V.fold_forecasts("nhsn", 2022, every=16, n_jobs=1, cache_dir=tmp_path, models=("qr",))
    n = len(calls)
    again = V.fold_forecasts("nhsn", 2022, every=16, n_jobs=1, cache_dir=tmp_path, models=("qr",))
    assert len(calls) == n and again.equals(first)  # read from the cache
    monkeypatch.setattr(V, "models_tag", lambda models: "changed")
    V.fold_forecasts("nhsn", 2022, every=16, n_jobs=1, cache_dir=tmp_path, models=("qr",))
    assert len(calls) == 2 * n  # new code: forecast again


def test_the_hhs_admissions_fold_sees_only_what_was_issued_by_each_reference_date():
    """The HHS 2021-22 fold: weekly counts from the vendored COVIDcast export, a reference date sees
    rows issued by then only, every fold reference date has data before it and its horizon-3 target."""
    from analytics.backtest import build_panel

    t = V.hhs_target()
    assert {"date", "location", "value", "as_of"} <= set(t.columns) and (t["date"].dt.dayofweek == 5).all()
    assert t["location"].nunique() >= 50 and (t["value"] >= 0).all()
    refs = V.fold_refs("hhs", V.HHS_SEASON, t, every=4)
    assert len(refs) >= 5 and refs[0] > t["as_of"].min() and refs[-1] + pd.Timedelta(days=21) <= t["date"].max()
    first = refs[0]
    panel = build_panel(t, first, latency=1)
    issued = t[(t["as_of"] <= first) & (t["date"] <= first - pd.Timedelta(days=7))]
    assert panel.y.notna().sum().sum() == len(issued) > 0
    # a week earlier nothing had been issued yet (the export's first issue is 2021-10-28)
    assert build_panel(t, first - pd.Timedelta(days=7), latency=1).y.empty
    # the ILINet folds keep their reference dates (their cached forecasts stay valid)
    ili = V.ili_states()
    assert V.fold_refs("ilinet", 2014, ili, 4) == V.saturdays("2014-10-15", "2015-05-27")[::4]
