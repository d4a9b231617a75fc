"""The real-data lift pipeline (analytics/lift_real.py) on the vendored CTIS + HHS files."""
from __future__ import annotations

import pandas as pd
import pytest

from analytics import lift_real
from ingest.affect_commands import AFFECT_FILES, TARGET_FILES


def test_controls_are_built_from_what_was_known():
    survey = pd.DataFrame({
        "region_id": ["06", "06", "48", "36"], "indicator": ["wdepressed_7d"] * 4, "source": ["s"] * 4,
        "date": pd.to_datetime(["2021-06-01"] * 4), "issue": pd.to_datetime(["2021-06-06"] * 4),
        "value": [10.0, 11.0, 20.0, 30.0], "stderr": [0.1] * 4, "sample_size": [500.0] * 4,
    })
    mapping = lift_real.derangement(["06", "36", "48"], seed=3)
    assert all(k != v for k, v in mapping.items()) and sorted(mapping.values()) == ["06", "36", "48"]
    perm, inds = lift_real.variant_rows(survey, "permuted_state", mapping=mapping, shift_days=56)
    assert inds == lift_real.AFFECT
    donor_of = {v: k for k, v in mapping.items()}
    for _, r in perm.iterrows():  # each state's covariate is another state's series
        orig = survey.loc[survey.index == r.name, "region_id"].iloc[0]
        assert r["region_id"] == donor_of[orig] != orig
    shifted, _ = lift_real.variant_rows(survey, "shifted", mapping=mapping, shift_days=56)
    assert (shifted["date"] == survey["date"] + pd.Timedelta(days=56)).all()
    assert (shifted["issue"] == survey["issue"]).all()  # still known only from its real issue date
    wili, inds = lift_real.variant_rows(survey, "wili", mapping=mapping, shift_days=56)
    assert inds == ("wili",) and wili.empty


def test_target_reader_turns_rates_into_counts_and_keeps_issues():
    signal, flu = lift_real.read_target(TARGET_FILES["flu"])
    assert "prop" in signal
    tx = flu[(flu["location"] == "48") & (flu["date"] == "2022-01-15")].iloc[0]
    assert tx["value"] > 10  # per-100k rate x 29 million people / 1e5, not the rate itself
    assert (flu["as_of"] >= flu["date"]).all()
    wk = lift_real.weekly(flu)
    assert (wk["date"].dt.dayofweek == 5).all()


@pytest.mark.slow
def test_negative_controls_show_no_lift_on_real_data(tmp_path):
    """A few states, weekly COVID-19 admissions: the permuted-state and shifted controls are not informative."""
    cfg = lift_real.LiftRealConfig(targets=("covid",), freqs=("W",), states=("06", "48"),
                                   variants=("affect", "permuted_state", "shifted"), n_boot=300, n_jobs=2)
    table = lift_real.run(TARGET_FILES, AFFECT_FILES, cfg, tmp_path)
    overall = table[table["location"] == "overall"].set_index("variant")
    assert set(overall.index) == {"affect", "permuted_state", "shifted"}
    assert (overall["n_dates"] >= 20).all()  # rolling origin over the period
    for control in ("permuted_state", "shifted"):
        assert not overall.loc[control, "informative"], overall.loc[control].to_dict()
        assert overall.loc[control, "ratio_lo"] <= 1
    states = table[(table["location"] != "overall") & table["variant"].isin(["permuted_state", "shifted"])]
    assert not states["informative"].any()
    assert (table["simulated"] == False).all()  # noqa: E712 — real data, never marked simulated
    assert (tmp_path / "lift_real.csv").exists()
