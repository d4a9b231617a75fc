"""Affect lift: bootstrap ratio, lead estimate, verdicts; and the honest end-to-end check on
simulated affect (lead scenario shows lift, null scenario does not)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.lift import INFORMATIVE, INSUFFICIENT, NOT_INFORMATIVE, block_indices, lead_estimate, lift_table, wis_ratio


def _scores(n_dates: int, fused_factor: float, locs=("01", "02"), noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    dates = pd.date_range("2023-01-07", periods=n_dates, freq="7D")
    for loc in locs:
        for d in dates:
            for h in range(4):
                w = rng.gamma(2.0, 10.0)
                rows.append({"model": "sym", "location": loc, "reference_date": d, "horizon": h, "wis": w})
                rows.append({"model": "fused", "location": loc, "reference_date": d, "horizon": h,
                             "wis": w * fused_factor * (1 + rng.uniform(-noise, noise))})
    return pd.DataFrame(rows)


def test_block_bootstrap_indices_are_contiguous_blocks():
    idx = block_indices(10, 4, 50, np.random.default_rng(0))
    assert idx.shape == (50, 10)
    assert idx.min() >= 0 and idx.max() <= 9
    # the first block of each resample is 4 consecutive dates
    assert np.all(np.diff(idx[:, :4], axis=1) == 1)


def test_ratio_two_when_fused_halves_wis():
    out = wis_ratio(_scores(20, 0.5), "sym", "fused", n_boot=200).set_index("location")
    assert out.loc["overall", "wis_ratio"] == pytest.approx(2.0)
    assert out.loc["overall", "ratio_lo"] == pytest.approx(2.0)
    assert out.loc["01", "n_forecasts"] == 80 and out.loc["overall", "n_forecasts"] == 160


def test_verdicts_informative_not_informative_insufficient():
    helps = lift_table(_scores(20, 0.7, noise=0.1), symptom_model="sym", fused_model="fused", n_boot=300).set_index("location")
    assert helps.loc["overall", "verdict"] == INFORMATIVE and bool(helps.loc["overall", "informative"])
    same = lift_table(_scores(20, 1.0, noise=0.3), symptom_model="sym", fused_model="fused", n_boot=300).set_index("location")
    assert same.loc["overall", "ratio_lo"] < 1 < same.loc["overall", "ratio_hi"] + 0.05  # no real effect: near 1
    assert same.loc["overall", "verdict"] == NOT_INFORMATIVE and not bool(same.loc["overall", "informative"])
    few = lift_table(_scores(5, 0.5), symptom_model="sym", fused_model="fused", n_boot=100).set_index("location")
    assert (few["verdict"] == INSUFFICIENT).all() and not few["informative"].any()


def test_missing_model_is_named():
    with pytest.raises(ValueError, match="ensemble_affect"):
        wis_ratio(_scores(5, 1.0), "sym", "ensemble_affect")


def test_lead_estimate_recovers_a_known_shift():
    rng = np.random.default_rng(1)
    dates = pd.date_range("2021-01-02", periods=120, freq="7D")
    x = np.cumsum(rng.normal(0, 0.3, 123))
    y = np.expm1(np.clip(4 + x[:120], 0, None))  # symptoms
    a = x[3:123] + rng.normal(0, 0.05, 120)  # affect at t reflects symptoms at t + 3 weeks
    t = pd.DataFrame({"location": "01", "date": dates, "value": y})
    f = pd.DataFrame({"location": "01", "date": dates, "distress_share": a})
    out = lead_estimate(t, f, max_lag=6, n_boot=100).set_index("location")
    assert out.loc["01", "lead"] == 3
    assert out.loc["01", "lead_lo"] <= 3 <= out.loc["01", "lead_hi"]


@pytest.mark.slow
def test_simulated_lead_shows_lift_and_null_does_not(data_dir):
    """Honest end-to-end check: the same pooled quantile AR with and without simulated affect
    (driven by real FluSight admissions), rolling-origin over a year, latency 1 week."""
    from analytics.affect_csv import simulate_affect
    from analytics.backtest import backtest, saturdays
    from analytics.hubverse import read_target_csv
    from analytics.scoring import score

    regions = ["06", "36", "48", "12", "17", "42", "39", "13"]
    csv = data_dir / "flusight" / "target-hospital-admissions.csv"
    target = read_target_csv(csv, locations=regions)
    refs = saturdays("2022-07-02", "2023-07-29")
    verdicts = {}
    for scenario in ("lead", "null"):
        affect = simulate_affect(csv, scenario, regions=regions, devices_per_region=10, seed=3)
        fc = backtest(target, refs, models=["qr", "qr_affect"], latency=1, affect=affect,
                      affect_features=["distress_share", "arousal", "valence"], n_jobs=2)
        table = lift_table(score(fc, target), target, affect, symptom_model="qr", fused_model="qr_affect",
                           n_boot=1000).set_index("location")
        verdicts[scenario] = table.loc["overall"]
    lead, null = verdicts["lead"], verdicts["null"]
    assert lead["ratio_lo"] > 1 and lead["verdict"] == INFORMATIVE
    assert lead["lead_lo"] <= 2 <= lead["lead_hi"]  # simulator: affect leads by 14 days = 2 weeks
    assert not null["ratio_lo"] > 1 and null["verdict"] == NOT_INFORMATIVE


def test_cli_simulate_affect_backtest_fused_and_lift(tmp_path, data_dir, settings, warehouse, monkeypatch):
    """The user path of the README: simulate an affect CSV, backtest symptom-only and fused models
    on it, compute the lift table, and store it in the warehouse."""
    from typer.testing import CliRunner

    from affectwatch import settings as settings_mod
    from affectwatch.cli import app

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(settings.data_dir))
    settings_mod.get_settings.cache_clear()
    target = tmp_path / "target.csv"
    df = pd.read_csv(data_dir / "flusight" / "target-hospital-admissions.csv", dtype={"location": str})
    df[df.location.isin(["06", "36"])].to_csv(target, index=False)
    runner = CliRunner()
    aff = tmp_path / "affect.csv"
    r = runner.invoke(app, ["forecast", "simulate-affect", "--target-csv", str(target), "--scenario", "lead",
                            "--start", "2022-09-01", "--end", "2023-01-31", "--devices-per-region", "4", "--out", str(aff)])
    assert r.exit_code == 0, r.output
    feats = pd.read_csv(aff, dtype={"location": str})
    assert {"location", "date", "valence", "arousal", "distress_share", "confidence", "n_devices", "suppression"} <= set(feats.columns)
    assert set(feats["location"]) == {"06", "36"}
    hub = tmp_path / "hub.csv"
    r = runner.invoke(app, ["forecast", "backtest", "--target-csv", str(target), "--start", "2022-12-03", "--end", "2022-12-24",
                            "--models", "glm,glm_affect", "--affect-csv", str(aff), "--latency-weeks", "1", "--out", str(hub),
                            "--jobs", "1"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "lift.csv"
    r = runner.invoke(app, ["forecast", "lift", "--forecasts", str(hub), "--truth", str(target), "--affect-csv", str(aff),
                            "--symptom-model", "glm", "--fused-model", "glm_affect", "--simulated", "--out", str(out),
                            "--to-warehouse"])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out, dtype={"location": str})
    assert set(table["location"]) == {"06", "36", "overall"}
    assert (table["verdict"] == INSUFFICIENT).all()  # four reference dates are too few to judge
    settings_mod.get_settings.cache_clear()
    stored = warehouse.execute("select location, verdict, simulated, informative from affect_lift").df()
    assert len(stored) == 3 and stored["simulated"].all() and not stored["informative"].any()
