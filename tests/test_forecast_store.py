"""Warehouse round trip: panels from symptom_reports (latest revision / as of) and affect_windows
(device-weighted features with suppression codes), forecasts written by run_latest and read back."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from affectwatch.privacy import Suppression
from analytics.hubverse import read_target_csv
from analytics.panels import affect_features, symptom_series

REGIONS = ["06", "36", "48"]
T0 = datetime(2023, 6, 1, tzinfo=timezone.utc)


def _load_symptoms(con, data_dir):
    df = read_target_csv(data_dir / "flusight" / "target-hospital-admissions.csv", locations=REGIONS)
    df = df[(df.date >= "2022-08-06") & (df.date <= "2023-03-25")].sort_values(["location", "date"])
    rows = pd.DataFrame({
        "region_id": df["location"], "syndrome": "flu_admissions",
        "period_start": (df["date"] - pd.Timedelta(days=6)).dt.date, "period_end": df["date"].dt.date,
        "count": df["value"].astype("int64"), "denominator": None, "source": "test",
        "reported_at": [T0] * len(df), "schema_version": 1, "origin": "file:test",
    })
    # a later revision of California's last week (10x), reported a week later
    rev = rows[(rows.region_id == "06")].tail(1).assign(count=lambda d: d["count"] * 10,
                                                        reported_at=datetime(2023, 6, 8, tzinfo=timezone.utc))
    allrows = pd.concat([rows, rev], ignore_index=True)
    con.register("sym_df", allrows)
    con.execute("insert into symptom_reports by name select *, now() as ingested_at from sym_df")
    con.unregister("sym_df")
    return df, int(rev["count"].iloc[0])


def _load_affect(con, data_dir):
    from ingest.simulate import affect_frame, load_series

    series = load_series(data_dir / "flusight" / "target-hospital-admissions.csv")
    w = affect_frame(series, "lead", start="2022-08-01", end="2023-03-25", regions=REGIONS, devices_per_region=4,
                     window_minutes=1440, seed=1)
    # region 48 in the last week: keep only two devices -> suppressed (too few devices)
    last_week = w["window_start"] >= pd.Timestamp("2023-03-19", tz="UTC")
    devs = sorted(w.loc[(w.region_id == "48") & last_week, "device_id"].unique())
    w = w[~((w.region_id == "48") & last_week & ~w.device_id.isin(devs[:2]))]
    con.register("aff_df", pa.Table.from_pandas(w, preserve_index=False))
    con.execute("insert into affect_windows by name select *, now() as ingested_at from aff_df")
    con.unregister("aff_df")
    return w


def test_symptom_panel_latest_revision_and_as_of(warehouse, data_dir):
    df, revised = _load_symptoms(warehouse, data_dir)
    latest = symptom_series(warehouse, "flu_admissions")
    assert set(latest["location"]) == set(REGIONS) and len(latest) == len(df)
    last_ca = latest[latest.location == "06"].iloc[-1]
    assert last_ca["value"] == revised
    first = symptom_series(warehouse, "flu_admissions", as_of="2023-06-02")
    assert first[first.location == "06"].iloc[-1]["value"] == revised / 10
    assert symptom_series(warehouse, "flu_admissions", as_of="2023-05-01").empty
    assert (pd.to_datetime(latest["date"]).dt.dayofweek == 5).all()  # MMWR weeks end on Saturday


def test_affect_features_weighted_and_suppressed(warehouse, data_dir, settings):
    w = _load_affect(warehouse, data_dir)
    feats = affect_features(warehouse, settings=settings, adjust_versions=False)
    cell = feats[(feats.location == "06") & (feats.date == pd.Timestamp("2023-01-07"))].iloc[0]
    raw = w[(w.region_id == "06") & (w.window_start >= pd.Timestamp("2023-01-01", tz="UTC"))
            & (w.window_start < pd.Timestamp("2023-01-08", tz="UTC"))]
    # the one cell definition: each device's mean weighted by its scored observations, then devices equally
    per_device = raw.groupby("device_id")[["distress_share", "n_observations"]].apply(
        lambda d: np.average(d["distress_share"], weights=d["n_observations"]))
    expect = per_device.mean()
    assert cell["distress_share"] == pytest.approx(expect)
    assert cell["n_observations"] == raw["n_observations"].sum() and cell["n_devices"] == raw["device_id"].nunique()
    assert cell["suppression"] == Suppression.NOT_SUPPRESSED
    small = feats[(feats.location == "48") & (feats.date == pd.Timestamp("2023-03-25"))].iloc[0]
    assert small["suppression"] == Suppression.TOO_FEW_DEVICES
    assert np.isnan(small["distress_share"]) and np.isnan(small["valence"])  # NULL, never 0


def test_run_latest_writes_forecasts_read_back(warehouse, data_dir, settings):
    from analytics.forecast_run import run_latest

    _load_symptoms(warehouse, data_dir)
    _load_affect(warehouse, data_dir)
    out = run_latest(settings, warehouse, syndrome="flu_admissions", n_jobs=1)
    res = out["syndromes"][0]
    assert res["reference_date"] == "2023-04-01" and res["last_observed"] == "2023-03-25"
    assert "ensemble_affect" in res["models"]
    back = warehouse.execute("select * from forecasts").df()
    assert len(back) == res["rows"] > 0
    assert set(back["target"]) == {"wk inc flu_admissions"}
    assert set(back["location"]) == set(REGIONS)
    assert {"baseline", "ensemble", "glm_affect", "qr_affect", "ensemble_affect"} <= set(back["model"])
    assert not {"gbq", "qar"} & set(back["model"])  # pooled models only with settings.forecast.pooled_models
    assert (back["value"] >= 0).all() and back["run_id"].nunique() == 1
    g = back.sort_values("output_type_id").groupby(["model", "location", "horizon"])["value"]
    assert g.apply(lambda v: (np.diff(v.to_numpy()) >= 0).all()).all()
    # a rerun replaces rows instead of duplicating them
    run_latest(settings, warehouse, syndrome="flu_admissions", n_jobs=1)
    again = warehouse.execute("select count(*), count(distinct run_id) from forecasts").fetchone()
    assert again == (len(back), 1)
