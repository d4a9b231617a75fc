"""Analyst views on the populated fixture warehouse, checked against independent pandas computations."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analyst.sqlshell import open_session
from analyst.views import mart_names, view_files

EXAMPLES = sorted((view_files()[0].path.parents[2] / "examples").glob("*.sql"))


@pytest.fixture(scope="module")
def session(populated_settings):
    s = open_session(populated_settings)
    yield s
    s.con.close()


@pytest.fixture(scope="module")
def raw(populated_settings):
    """Raw warehouse tables for the independent computations (pipeline access, read-only)."""
    from affectwatch.warehouse import connect

    con = connect(populated_settings, read_only=True)
    yield lambda sql: con.execute(sql).df()
    con.close()


def frame(session, sql: str) -> pd.DataFrame:
    cols, rows = session.run(sql)
    return pd.DataFrame(rows, columns=cols)


def test_every_view_compiles_and_returns_rows(session):
    for name in mart_names():
        sql = (f"select * from {name}(timestamptz '2030-01-01 00:00:00+00')" if name == "symptoms_known_at"
               else f"select * from {name}(date '2030-01-01')" if name == "survey_affect_known_at"
               else f"select * from {name}")
        cols, rows = session.run(sql)
        assert cols and rows, name


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_runs_and_answers(session, path):
    cols, rows = session.run(path.read_text())
    assert cols and rows, f"{path.name} returned no rows on the fixture"


def _expected_code(n_windows: int, n_scored: int, n_devices: int, quality: float, k_min: int = 11,
                   min_devices: int = 3, min_quality: float = 0.3) -> int:
    """The primary code (complementary suppression, 5, may replace a 0; checked in test_privacy_surfaces)."""
    if n_windows == 0:
        return 3
    if n_scored < k_min:
        return 1
    if n_devices < min_devices:
        return 2
    return 4 if quality < min_quality else 0


def _affect_cells(windows: pd.DataFrame, period: str) -> pd.DataFrame:
    """Device-weighted region cells, computed with pandas from the raw windows."""
    w = windows.copy()
    w["day"] = pd.to_datetime(w["window_start"], utc=True).dt.tz_convert("UTC").dt.date
    if period == "week":
        w["period"] = [d - timedelta(days=(d.weekday() + 1) % 7) for d in w["day"]]
    else:
        w["period"] = w["day"]
    w["n_scored"] = w["n_observations"]  # DESIGN.md: scored observations; n_abstained is extra
    q = w[["quality_pose_stability", "quality_lighting"]].clip(0, 1)
    q["snr"] = (w["quality_snr_db"] / 20.0).clip(0, 1)
    w["q_x"] = q.mean(axis=1).fillna(1.0) * w["n_scored"]
    w["v_x"] = w["valence_mean"] * w["n_scored"]
    w["d_x"] = w["distress_share"] * w["n_scored"]
    dev = w.groupby(["region_id", "period", "device_id"]).agg(
        n_abstained=("n_abstained", "sum"), n_scored=("n_scored", "sum"), v_x=("v_x", "sum"), d_x=("d_x", "sum"),
        q_x=("q_x", "sum"), n_windows=("n_observations", "size")).reset_index()
    dev["valence"] = dev["v_x"] / dev["n_scored"].replace(0, np.nan)
    dev["distress"] = dev["d_x"] / dev["n_scored"].replace(0, np.nan)
    cells = dev.groupby(["region_id", "period"]).agg(
        n_devices=("device_id", "nunique"), n_abstained=("n_abstained", "sum"), n_scored=("n_scored", "sum"),
        q_x=("q_x", "sum"), n_windows=("n_windows", "sum"), valence_mean=("valence", "mean"),
        distress_share=("distress", "mean")).reset_index()
    cells["suppression"] = [_expected_code(n, s, d, qx / s if s else 0.0) for n, s, d, qx in
                            zip(cells["n_windows"], cells["n_scored"], cells["n_devices"], cells["q_x"])]
    return cells


@pytest.mark.parametrize("period,view,key", [("week", "affect_region_week", "week_start"), ("day", "affect_region_day", "day")])
def test_affect_cells_match_pandas(session, raw, period, view, key):
    expected = _affect_cells(raw("select * from affect_windows"), period)
    got = frame(session, f"select * from {view} where suppression <> 3").rename(columns={key: "period"})
    merged = expected.merge(got, on=["region_id", "period"], how="outer", suffixes=("_pd", "_sql"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    for col in ("n_devices", "n_abstained", "n_scored", "n_windows"):
        assert (merged[f"{col}_pd"] == merged[f"{col}_sql"]).all(), col
    complementary = (merged["suppression_sql"] == 5) & (merged["suppression_pd"] == 0)
    assert (complementary | (merged["suppression_pd"] == merged["suppression_sql"])).all()
    visible = merged[merged["suppression_sql"] == 0]
    np.testing.assert_allclose(visible["valence_mean_sql"], visible["valence_mean_pd"], rtol=1e-9)
    np.testing.assert_allclose(visible["distress_share_sql"], visible["distress_share_pd"], rtol=1e-9)
    hidden = merged[merged["suppression_sql"] != 0]
    assert len(hidden) > 0 and hidden["valence_mean_sql"].isna().all() and hidden["distress_share_sql"].isna().all()


def test_fixture_small_cells_are_suppressed_with_the_right_code(session):
    rows = frame(session, "select region_id, cast(week_start as varchar) as week, suppression, valence_mean "
                          "from affect_region_week where suppression in (1, 2) order by region_id")
    assert rows[["region_id", "week", "suppression"]].values.tolist() == [["04013", "2023-06-11", 1], ["25", "2023-05-21", 2]]
    assert rows["valence_mean"].isna().all()


def test_no_data_days_are_coded_not_missing(session):
    gaps = frame(session, "select * from affect_region_day where region_id = '04013' and n_windows = 0")
    assert len(gaps) > 0 and (gaps["suppression"] == 3).all() and gaps["valence_mean"].isna().all()


def test_symptoms_latest_picks_the_latest_revision(session, raw):
    reports = raw("select * from symptom_reports")
    latest = (reports.sort_values("reported_at").groupby(["region_id", "syndrome", "period_start", "period_end"])
              .agg(count=("count", "last"), first_count=("count", "first"), n=("count", "size")).reset_index())
    got = frame(session, "select region_id, syndrome, period_start, period_end, count, first_count, n_revisions from symptoms_latest")
    for df in (latest, got):
        df["period_start"] = pd.to_datetime(df["period_start"])
        df["period_end"] = pd.to_datetime(df["period_end"])
    merged = latest.merge(got, on=["region_id", "syndrome", "period_start", "period_end"], suffixes=("_pd", "_sql"))
    assert len(merged) == len(latest) == len(got)
    assert (merged["count_pd"] == merged["count_sql"]).all()
    assert (merged["first_count_pd"] == merged["first_count_sql"]).all()
    assert (merged["n"] == merged["n_revisions"]).all()
    assert (merged["n"] > 1).sum() == 10  # the fixture revises ten admission weeks


def test_symptoms_as_reported_numbers_revisions_in_report_order(session):
    rows = frame(session, "select revision, count, change_from_previous, is_latest from symptoms_as_reported "
                          "where region_id = '48' and syndrome = 'flu_admissions' and period_end = date '2023-06-24' "
                          "order by revision")
    assert rows["revision"].tolist() == [1, 2]
    assert rows["is_latest"].tolist() == [False, True]
    assert rows["change_from_previous"].iloc[1] == rows["count"].iloc[1] - rows["count"].iloc[0]


def test_fused_region_week_joins_symptoms_and_hides_suppressed_affect(session):
    rows = frame(session, "select * from fused_region_week where region_id = '25' and syndrome = 'flu_admissions' "
                          "and week_start between date '2023-05-14' and date '2023-05-28' order by week_start")
    assert rows["affect_suppression"].tolist() == [0, 2, 0]
    assert rows["valence_mean"].isna().tolist() == [False, True, False]
    assert rows["affect_simulated"].all()
    early = frame(session, "select affect_suppression, affect_simulated from fused_region_week where week_start < date '2023-01-01'")
    assert (early["affect_suppression"] == 3).all() and not early["affect_simulated"].any()


def test_forecasts_latest_uses_the_latest_run_and_real_quantiles(session, raw):
    fc = raw("select * from forecasts")
    latest_created = fc.groupby(["reference_date", "model", "location", "target"])["created_at"].transform("max")
    fc = fc[fc["created_at"] == latest_created]
    med = fc[np.isclose(fc["output_type_id"], 0.5)].set_index(["reference_date", "model", "location", "horizon"])["value"]
    got = frame(session, "select * from forecasts_latest").set_index(["reference_date", "model", "location", "horizon"])
    assert len(got) == len(med)
    np.testing.assert_allclose(got.loc[med.index, "median"].to_numpy(float), med.to_numpy(float))
    assert (got["n_quantiles"] == 23).all()
    assert (got["lower_95"] <= got["lower_50"]).all() and (got["upper_50"] <= got["upper_95"]).all()
    assert not got["run_id"].str.endswith("superseded").any()
    assert got["observed"].notna().sum() == 10 * 8 * 2  # 4+3+2+1 observed target weeks x 8 states x 2 models


def test_forecast_scores_summary_matches_pandas(session, raw):
    sc = raw("select * from forecast_scores")
    by = sc.groupby(["model", "location"]).agg(wis=("wis", "mean"), c95=("cover_95", "mean"), n=("wis", "size"))
    base = sc[sc["model"] == "baseline"].set_index(["location", "reference_date", "horizon"])["wis"]
    ens = sc[sc["model"] == "ensemble"].set_index(["location", "reference_date", "horizon"])["wis"]
    rel = (ens.groupby("location").sum() / base.groupby("location").sum())
    got = frame(session, "select * from forecast_scores where horizon is null").set_index(["model", "location"])
    np.testing.assert_allclose(got.loc[by.index, "mean_wis"], by["wis"])
    np.testing.assert_allclose(got.loc[by.index, "coverage_95"], by["c95"])
    assert (got.loc[by.index, "n_forecasts"] == by["n"]).all()
    np.testing.assert_allclose(got.xs("ensemble")["relative_wis"].loc[rel.index], rel)
    np.testing.assert_allclose(got.xs("baseline")["relative_wis"], 1.0)


def test_alert_views(session):
    open_ = frame(session, "select * from alerts_open")
    assert set(open_["status"]) <= {"open", "ongoing"}
    assert sorted(open_["level"]) == ["insufficient_data", "red", "yellow"]
    assert open_.set_index("level").loc["red", "acknowledged"]
    history = frame(session, "select * from alert_history order by alert_id, event_seq")
    assert len(history) == 8 and (history["event"] == "acknowledged").sum() == 1
    resolved = history[history["alert_id"] == "36|ili|2023-05-14"]
    assert resolved["event"].tolist() == ["opened", "resolved"] and resolved["event_seq"].tolist() == [1, 2]


def test_data_quality_daily_counts_match_pandas(session, raw):
    w = raw("select region_id, site_type, device_id, window_start, window_end from affect_windows")
    w["day"] = pd.to_datetime(w["window_start"], utc=True).dt.date
    exp = w.groupby(["region_id", "site_type", "day"]).agg(
        n_windows=("device_id", "size"), n_devices=("device_id", "nunique"), last_seen=("window_end", "max")).reset_index()
    got = frame(session, "select * from data_quality_daily where last_seen is not null")
    merged = exp.merge(got, on=["region_id", "site_type", "day"], suffixes=("_pd", "_sql"))
    assert len(merged) == len(exp) == len(got)
    shown = merged[~merged["below_minimums"]]
    assert (shown["n_windows_pd"] == shown["n_windows_sql"]).all()
    assert (shown["n_devices_pd"] == shown["n_devices_sql"]).all()
    # a feed below the privacy minimums shows no counts to analysts (operators: dashboard, admin role)
    small = merged[merged["below_minimums"]]
    assert (small["n_devices_pd"] < 3).all() or len(small) == 0
    assert small[["n_windows_sql", "n_devices_sql", "n_scored", "abstain_share"]].isna().all().all()
    dead = raw("select count(*) as n from dead_letters")["n"].iloc[0]
    assert frame(session, "select sum(n_dead_letters) as n from data_quality_daily")["n"].iloc[0] == dead


def test_dead_letters_summary_counts_without_payloads(session, raw):
    dl = raw("select reason, count(*) as n from dead_letters group by reason").set_index("reason")["n"]
    got = frame(session, "select reason, sum(n_dead_letters) as n from dead_letters_summary group by reason").set_index("reason")["n"]
    assert got.sort_index().to_dict() == dl.sort_index().to_dict()
    cols = frame(session, "select * from dead_letters_summary limit 0").columns
    assert "raw" not in cols and "message_key" not in cols


def test_marts_expose_no_device_ids(session):
    cols = frame(session, "select table_name, column_name from duckdb_columns() where database_name = 'analyst' "
                          "and schema_name = 'main'")
    assert not cols["column_name"].str.contains("device_id").any()
