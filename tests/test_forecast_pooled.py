"""Pooled multi-source models (gbq, qar): nothing published after the reference date is used
(target data and ILINet), quantiles never cross, series they cannot handle fall back to the
baseline with the reason, interpolation and ensemble calibration, revision correction, and the
progress bar's silence off a terminal."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import analytics.models.pooled as pooled
from analytics import revisions
from analytics.backtest import build_panel
from analytics.forecast import forecast_panel
from analytics.hubverse import read_target_csv
from analytics.ilinet import ili_states, published_by, season_week
from analytics.models.ensemble import calibrate, weighted_combine
from analytics.models.pooled import FIT_LEVELS, PooledModel
from affectwatch.progress import progress
from analytics.quantiles import LEVELS, check_values, interpolate_levels

STATES = ["06", "36", "48", "17"]
REF = pd.Timestamp("2023-01-07")


@pytest.fixture(scope="module")
def admissions(data_dir):
    return read_target_csv(data_dir / "flusight" / "target-hospital-admissions.csv", locations=STATES)


def _predict(kind: str, panel, steps=(1,)):
    m = PooledModel(kind=kind, max_rows=2000, max_iter=15).fit(panel)  # small: the test checks data flow
    return m, m.predict(list(steps), LEVELS)


def _panel(target, ref=REF, latency=1):
    return dataclasses.replace(build_panel(target, ref, latency=latency), reference_date=ref)


@pytest.mark.parametrize("kind", ["gbq", "qar"])
def test_data_after_the_reference_date_do_not_change_the_forecast(admissions, monkeypatch, kind):
    _, before = _predict(kind, _panel(admissions))
    # target: every value after the reference date multiplied by 50
    moved = admissions.copy()
    moved.loc[moved["date"] > REF, "value"] *= 50
    # ILINet: weeks not yet published on the reference date (ending after REF - 7 days) multiplied too
    ili = ili_states()
    unpublished = ~ili.index.isin(published_by(ili, REF).index)
    assert unpublished.sum() > 0
    ili.loc[unpublished, "value"] *= 50
    monkeypatch.setattr(pooled, "ili_states", lambda: ili)
    _, after = _predict(kind, _panel(moved))
    assert before.keys() == after.keys() == set(STATES)
    for loc in STATES:
        np.testing.assert_array_equal(before[loc], after[loc])
    # ... while a change to ILINet that WAS published by then does change it (the test can fail)
    ili2 = ili_states()
    ili2.loc[ili2["date"] <= REF - pd.Timedelta(days=7), "value"] *= np.linspace(0.2, 5, (ili2["date"] <= REF - pd.Timedelta(days=7)).sum())
    monkeypatch.setattr(pooled, "ili_states", lambda: ili2)
    _, changed = _predict(kind, _panel(admissions))
    assert any(not np.allclose(before[l], changed[l]) for l in STATES)


@pytest.mark.parametrize("kind", ["gbq", "qar"])
def test_quantiles_do_not_cross_and_are_non_negative(admissions, kind):
    _, pred = _predict(kind, _panel(admissions), steps=(1, 4))
    for loc, q in pred.items():
        assert q.shape == (2, len(LEVELS))
        check_values(q, LEVELS)
        assert q[0, LEVELS.index(0.975)] > q[0, LEVELS.index(0.025)]


def test_interpolation_keeps_fitted_levels_and_sorts_crossing_input():
    v = np.array([[-3.0, -1.0, -0.5, 0.0, 0.7, 0.5, 2.0]])  # 0.75 and 0.9 cross
    out = interpolate_levels(v, FIT_LEVELS, LEVELS)
    assert np.all(np.diff(out) >= 0)
    srt = np.sort(v, axis=-1)
    for j, lv in enumerate(FIT_LEVELS):
        assert out[0, LEVELS.index(lv)] == pytest.approx(srt[0, j])
    assert out[0, 0] < srt[0, 0] and out[0, -1] > srt[0, -1]  # tails extrapolated outwards


def test_series_the_model_cannot_handle_fall_back_with_the_reason(admissions, caplog):
    panel = build_panel(admissions, REF, latency=1)
    y = panel.y.copy()
    y["99"] = np.nan
    y.iloc[-3:, y.columns.get_loc("99")] = [3.0, 4.0, 5.0]  # three weeks of history
    fc = forecast_panel(dataclasses.replace(panel, y=y), REF, models=["baseline", "qar"], horizons=[0])
    fb = [f for f in fc.attrs["fallbacks"] if f["model"] == "qar"]
    assert fb == [{"model": "qar", "location": "99", "reason": "qar: only 3 observations (needs 6)"}]
    got = fc[(fc.model == "qar") & (fc.location == "99")]["value"].to_numpy()
    base = fc[(fc.model == "baseline") & (fc.location == "99")]["value"].to_numpy()
    np.testing.assert_array_equal(got, base)
    assert len(fc[(fc.model == "qar") & (fc.location == "06")]) == len(LEVELS)


def test_daily_panels_fall_back_whole_with_the_reason():
    idx = pd.date_range("2023-01-01", periods=60, freq="D")
    y = pd.DataFrame({"a": np.random.default_rng(0).poisson(20, 60).astype(float)}, index=idx)
    from analytics.models import Panel

    fc = forecast_panel(Panel(y, None, "D"), idx[-1] + pd.Timedelta(days=1), models=["baseline", "qar"], horizons=[1, 2])
    assert fc.attrs["fallbacks"][0]["reason"] == "qar: weekly data only (season features); got freq 'D'"


def test_weighted_combine_and_calibration():
    a = np.tile(np.linspace(100, 122, 23), (2, 1))
    b = a + 2
    m = weighted_combine(np.stack([a, b]))
    np.testing.assert_allclose(m, a + 1)
    wide = calibrate(m, [2.0] * 11)
    med = m[:, [11]]
    np.testing.assert_allclose(wide - med, 2 * (m - med))
    with pytest.raises(ValueError, match="calibration factors"):
        calibrate(m, [1.0] * 3)


def test_revisions_learned_from_earlier_vintages_correct_the_newest_week():
    dates = pd.date_range("2022-06-04", periods=30, freq="7D")
    rows = []
    for loc in ["01", "02", "04"]:
        final = 100.0 + 10 * np.arange(30)
        for v, as_of in enumerate(dates + pd.Timedelta(days=4)):
            for i in range(v + 1):  # vintage v knows weeks 0..v; its newest week is reported at 60%
                rows.append((dates[i], loc, final[i] * (0.6 if i == v else 1.0), as_of))
    target = pd.DataFrame(rows, columns=["date", "location", "value", "as_of"])
    ref = dates[25] + pd.Timedelta(days=7)
    f = revisions.learn(target, ref)
    assert f[0] == pytest.approx(1 / 0.6, rel=0.02) and f[1] == pytest.approx(1.0)
    corrected = build_panel(target, ref, latency=0)
    raw = build_panel(target, ref, latency=0, correct_revisions=False)
    last = dates[25]
    assert raw.y.loc[last, "01"] == pytest.approx(0.6 * 350)
    assert corrected.y.loc[last, "01"] == pytest.approx(350, rel=0.02)
    assert corrected.y.loc[dates[24], "01"] == raw.y.loc[dates[24], "01"]
    assert revisions.learn(target.drop(columns="as_of"), ref) == {}


def test_season_week_and_ilinet_publication_rule():
    assert season_week(pd.to_datetime(["2022-08-01", "2023-01-07", "2023-07-31"])).tolist() == [0, 22, 52]
    ili = ili_states()
    pub = published_by(ili, REF)
    assert pub["date"].max() == REF - pd.Timedelta(days=7)


def test_progress_bar_is_quiet_off_a_terminal(capsys):
    assert list(progress(iter(range(3)), total=3, desc="backtest")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_features_of_a_series_shorter_than_its_longest_lag():
    """An extra source published only a week or two before the reference date (LOSO fold starts) has
    fewer weeks than the 4-week slope: its features are NaN where a lag is missing, never a crash."""
    from analytics.features import Series, feature_arrays

    for n in (0, 1, 2, 5):
        s = Series("ilinet", "06", pd.date_range("2019-10-05", periods=n, freq="7D"), np.arange(n, dtype=float) * 10)
        f, x = feature_arrays(s, scale=2.0, peak=20.0, is_target=False)
        assert all(len(v) == len(x) == n for v in f.values())
        assert np.isnan(f["slope4"]).sum() == min(n, 4)


def test_ilinet_above_its_floor_uses_past_weeks_only_and_leaves_the_input_alone():
    """The extra ILINet source enters the pooled models as visits above a rolling non-influenza floor:
    non-negative, a copy, and a week's value depends only on that week and the weeks before it."""
    from analytics.features import Series, above_floor

    ili = ili_states()
    g = ili[ili["location"] == "06"].sort_values("date")
    y = g["value"].to_numpy(dtype=float)
    s = Series("ilinet", "06", pd.DatetimeIndex(g["date"]), y.copy())
    out = above_floor(s)
    assert np.array_equal(s.y, y, equal_nan=True)  # input unchanged
    ok = np.isfinite(out.y)
    assert (out.y[ok] >= 0).all() and (out.y[ok] <= y[ok]).all()
    assert (out.y[ok] < y[ok]).mean() > 0.9  # the floor is removed almost everywhere
    cut = 400
    later = y.copy()
    later[cut:] *= 3.0
    moved = above_floor(Series("ilinet", "06", s.dates, later))
    assert np.array_equal(moved.y[:cut], out.y[:cut], equal_nan=True)
    # off-season weeks sit near 0, a season's peak stays far above it
    season = (s.dates >= "2017-10-01") & (s.dates < "2018-06-01")
    assert np.nanmax(out.y[season]) > 0.5 * np.nanmax(y[season])


def test_gbq_trains_on_ilinet_above_its_floor_unless_the_target_is_ili(admissions, monkeypatch):
    """Admissions targets: gbq's extra ILINet rows are ILI above the floor, qar's are raw ILINet; an
    ILI target (``target_is_ili``, set by forecast_panel for syndrome 'ili') keeps raw ILINet for both."""
    from analytics import features

    seen = []
    real = features.above_floor
    monkeypatch.setattr(features, "above_floor", lambda s, *a, **k: seen.append(s.location) or real(s, *a, **k))
    panel = _panel(admissions)
    gbq, fl = _predict("gbq", panel)
    assert len(seen) == len(pooled._ilinet_series(REF)) > 50
    seen.clear()
    _, raw = _predict("gbq", dataclasses.replace(panel, target_is_ili=True))
    _predict("qar", panel)
    assert seen == []
    assert any(not np.allclose(fl[l], raw[l]) for l in STATES)
    # forecast_panel decides from the target name, the one syndrome rule (affectwatch.syndromes)
    from analytics import forecast as fcmod

    flags, run = [], fcmod._run_model
    monkeypatch.setattr(fcmod, "_run_model", lambda name, p, *a, **k: flags.append(p.target_is_ili) or run(name, p, *a, **k))
    for target, ili in (("wk inc ili", True), ("wk inc flu_admissions", False), ("day inc ILI", True)):
        flags.clear()
        fcmod.forecast_panel(panel, REF, models=["baseline"], target=target)
        assert flags and set(flags) == {ili}


def test_an_ili_target_is_not_trained_on_twice():
    """Syndrome 'ili' from the warehouse is the vendored ILINet itself: the extra ILINet keeps only a
    target location's weeks before its own history begins, and every other location whole."""
    ili = ili_states()
    ili = ili[ili["date"] <= REF]
    target = ili[ili["location"].isin(["06", "36"]) & (ili["date"] >= "2015-10-03")]
    panel = dataclasses.replace(_panel(target), target_is_ili=True)

    def ilinet_weeks(model):
        return sum(len(x) for source, _, _, x in model._rows if source == "ilinet")

    published = published_by(ili, REF)
    earlier = published["date"] < pd.Timestamp("2015-10-03")
    assert ilinet_weeks(PooledModel(kind="qar").fit(panel)) == len(published[~published["location"].isin(["06", "36"]) | earlier])
    # an admissions target keeps every ILINet week
    assert ilinet_weeks(PooledModel(kind="qar").fit(dataclasses.replace(panel, target_is_ili=False))) == len(published)


def test_an_absent_covariate_does_not_stop_the_linear_fit(admissions):
    """A covariate missing everywhere (an affect feature with every cell suppressed) is a constant
    column the quantile autoregression leaves out, and collinear covariates get a minimum-norm fit:
    "Singular matrix" stopped `forecast run` in the demo (ILINet as target and as extra source, affect
    on a few recent weeks only) once the pooled models became the ensemble's members."""
    panel = _panel(admissions)
    absent = pd.DataFrame(np.nan, index=panel.y.index, columns=panel.y.columns)
    present = pd.DataFrame(np.random.default_rng(0).normal(size=panel.y.shape), index=panel.y.index, columns=panel.y.columns)
    panel = dataclasses.replace(panel, affect={"distress_share": present, "confidence": absent})
    m = PooledModel(kind="qar", affect=True, max_rows=2000).fit(panel)
    preds = m.predict([1, 2], LEVELS)
    assert set(preds) == set(STATES) and not m.failures
    for q in preds.values():
        assert np.all(np.isfinite(q)) and np.all(np.diff(q, axis=1) >= 0)
    # the solver itself survives collinear columns (here a duplicated one; in the demo, covariates seen
    # on a few rows only): a minimum-norm fit instead of "Singular matrix"
    from analytics.models.quantreg import quantreg_irls

    rng = np.random.default_rng(1)
    x = rng.normal(size=200) * 1e4
    X = np.column_stack([np.ones(200), x, x])
    y = 2 * x + rng.normal(size=200)
    B = quantreg_irls(X, y, np.array([0.1, 0.5, 0.9]))
    assert np.all(np.isfinite(B))
    assert np.allclose(X @ B[1], 2 * x, atol=5.0)


def test_a_numerical_failure_falls_back_to_the_baseline_and_never_stops_the_run(admissions, monkeypatch):
    def singular(self, X, d, Xnow):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(PooledModel, "_fit_predict", singular)
    panel = _panel(admissions)
    fc = forecast_panel(panel, REF, models=["baseline", "qar"], horizons=[0, 1])
    fb = {f["location"]: f["reason"] for f in fc.attrs["fallbacks"] if f["model"] == "qar"}
    assert set(fb) == set(STATES) and all("numerical failure (Singular matrix)" in r for r in fb.values())
    got = fc[fc.model == "qar"].sort_values(["location", "horizon", "output_type_id"])["value"].to_numpy()
    base = fc[fc.model == "baseline"].sort_values(["location", "horizon", "output_type_id"])["value"].to_numpy()
    np.testing.assert_array_equal(got, base)


def test_worker_processes_do_not_change_the_forecasts(admissions):
    """``n_jobs`` splits per-series models by location and a lone pooled model by step: the same
    numbers as one process (each step's rows and seeds do not depend on which steps share a task)."""
    from analytics.forecast import predict_all

    panel = _panel(admissions)
    models = ["baseline", "qr", "qar"]
    one, f1 = predict_all(panel, [1, 2, 3, 4], models, np.asarray(LEVELS), n_jobs=1)
    two, f2 = predict_all(panel, [1, 2, 3, 4], models, np.asarray(LEVELS), n_jobs=2)
    assert f1 == f2 and set(one) == set(two) == set(models)
    for m in models:
        assert set(one[m]) == set(two[m]) == set(STATES)
        for loc in STATES:
            np.testing.assert_array_equal(one[m][loc], two[m][loc])


def test_calendar_is_cached_by_dates_and_read_only():
    from analytics.features import calendar

    idx = pd.date_range("2022-07-02", periods=50, freq="7D")  # to 2023-06-10
    seasons, weeks = calendar(idx)
    np.testing.assert_array_equal(weeks, season_week(idx))
    assert seasons[0] == 2021 and seasons[-1] == 2022  # a season starts in August
    assert calendar(pd.DatetimeIndex(list(idx)))[1] is weeks  # equal dates, another index object: cached
    assert not weeks.flags.writeable
    assert calendar(idx[1:])[1][0] == weeks[1]


_THREADS_PROBE = """
import sys, dataclasses
import pandas as pd
from threadpoolctl import threadpool_info
from analytics.backtest import build_panel
from analytics.hubverse import read_target_csv
from analytics.models.pooled import PooledModel
from analytics.quantiles import LEVELS

seen = []
fit_predict = PooledModel._fit_predict
def spy(self, *a, **k):  # the OpenMP threads right after the trees' fits, still inside predict's limit
    out = fit_predict(self, *a, **k)
    seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp")
    return out
PooledModel._fit_predict = spy
assert "sklearn.ensemble" not in sys.modules  # as in a fresh worker process
target = read_target_csv(sys.argv[1], locations=["06", "36", "48", "17"])
ref = pd.Timestamp("2023-01-07")
panel = dataclasses.replace(build_panel(target, ref, latency=1), reference_date=ref)
PooledModel(kind="gbq", max_rows=2000, max_iter=5).fit(panel).predict([1, 2], LEVELS)
print(sorted(set(seen)))
"""


def test_the_trees_fit_on_one_openmp_thread_from_the_first_fit(data_dir, tmp_path):
    """Parallelism comes from worker processes; threadpoolctl limits only libraries already loaded,
    so a process whose first gbq fit loaded the OpenMP runtime inside the limit ran that fit on every
    core's threads (4-40x slower on a busy machine). A fresh interpreter, as a worker process is."""
    import os
    import subprocess
    import sys

    probe = tmp_path / "probe.py"
    probe.write_text(_THREADS_PROBE)
    env = {**os.environ, "OMP_NUM_THREADS": "4"}  # what an unlimited fit would use here
    out = subprocess.run([sys.executable, str(probe), str(data_dir / "flusight" / "target-hospital-admissions.csv")],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[1]", out.stdout + out.stderr


def test_a_location_without_population_keeps_its_own_scale_and_not_the_others(admissions):
    """One territory missing from locations.csv must not switch the whole source off per-capita."""
    from analytics import features as F
    from analytics.ilinet import populations

    idx = pd.date_range("2022-10-01", periods=30, freq="7D")
    wide = admissions.pivot_table(index="date", columns="location", values="value").reindex(idx)
    states = [F.Series("target", loc, idx, wide[loc].to_numpy(float)) for loc in STATES]
    vi = F.Series("target", "78", idx, np.full(len(idx), 16.0))  # US Virgin Islands: no population
    assert "78" not in populations()
    alone = F.scales(states, populations(), ("target",))
    mixed = F.scales(states + [vi], populations(), ("target",))
    assert all(mixed[k] == alone[k] for k in alone)  # the states keep their per-capita scale
    assert mixed[("target", "78")] == pytest.approx(16.0 ** 0.25)  # its own 95th percentile
    ca, tx = alone[("target", "06")], alone[("target", "48")]
    assert ca / tx == pytest.approx((populations()["06"] / populations()["48"]) ** 0.25)  # per-capita


@pytest.mark.parametrize("kind", ["gbq", "qar"])
def test_an_admissions_file_that_starts_in_the_fall_gets_the_vendored_history(admissions, kind):
    """A FluSight file of a later season may start in the fall: the pooled models add the vendored
    NHSN weeks before it, so a file cut at 1 October 2022 forecasts exactly as the whole file does,
    even two weeks in, when the file alone is too short for the features."""
    for ref in (pd.Timestamp("2022-12-10"), pd.Timestamp("2022-10-15")):
        full = dataclasses.replace(_panel(admissions, ref), target_is_admissions=True)
        short = dataclasses.replace(_panel(admissions[admissions["date"] >= "2022-10-01"], ref), target_is_admissions=True)
        assert short.y.index[0] == pd.Timestamp("2022-10-01") and full.y.index[0] < pd.Timestamp("2022-03-01")
        _, a = _predict(kind, full, steps=(1, 3))
        m, b = _predict(kind, short, steps=(1, 3))
        assert not m.failures
        for loc in STATES:
            np.testing.assert_array_equal(a[loc], b[loc])
    # not for another syndrome: then the short file is forecast from its own weeks only
    m, c = _predict(kind, dataclasses.replace(short, target_is_admissions=False), steps=(1, 3))
    assert set(m.failures) == set(STATES) and "only 2 observations" in m.failures["06"]  # too short: baseline
    ref = pd.Timestamp("2022-12-10")
    short = dataclasses.replace(_panel(admissions[admissions["date"] >= "2022-10-01"], ref), target_is_admissions=False)
    _, a = _predict(kind, dataclasses.replace(_panel(admissions, ref), target_is_admissions=True), steps=(1, 3))
    _, c = _predict(kind, short, steps=(1, 3))
    assert any(not np.allclose(a[l], c[l]) for l in STATES)


def test_vendored_history_is_what_was_published_before_the_file_starts():
    from analytics.nhsn import history_before

    ref = pd.Timestamp("2022-12-10")
    h = history_before({"06": pd.Timestamp("2023-01-07"), "48": pd.Timestamp("2022-10-01"), "99": ref}, ref)
    assert set(h) == {"06", "48"}  # no vendored weeks for an unknown location
    assert h["06"][0][-1] == ref - pd.Timedelta(days=7)  # published by the reference date (a week after the week)
    assert h["48"][0][-1] == pd.Timestamp("2022-09-24")  # only weeks before the file's first week
    assert h["48"][0][0] == pd.Timestamp("2022-02-05") and np.isfinite(h["48"][1]).all()


def test_forecast_panel_marks_admissions_targets(admissions, monkeypatch):
    seen = {}
    orig = PooledModel.fit

    def spy(self, panel):
        seen[self.kind] = panel.target_is_admissions
        return orig(self, panel)

    monkeypatch.setattr(PooledModel, "fit", spy)
    panel = build_panel(admissions, REF, latency=1)
    forecast_panel(panel, REF, models=["qar"], components=["qar"])
    assert seen == {"qar": True}
    forecast_panel(panel, REF, models=["qar"], components=["qar"], target="wk inc flu_ed_visits")
    assert seen == {"qar": False}
    forecast_panel(panel, REF, models=["qar"], components=["qar"], target="wk inc flu hosp")  # FluSight's name
    assert seen == {"qar": True}
