"""The shared populated fixture warehouse: deterministic, real data where it exists, small cells present."""
from __future__ import annotations

from datetime import date

import pandas as pd

from affectwatch.mmwr import week_start as mmwr_week_start
from demo.fixture_data import FEW_OBSERVATIONS_REGION, QUANTILE_LEVELS, STATES, flu_admissions


def test_mmwr_week_start_matches_flusight_calendar():
    # MMWR 2022 week 40 ends Saturday 2022-10-08 (first FluSight week of the 2022/23 season).
    assert mmwr_week_start(2022, 40) == date(2022, 10, 2)
    assert mmwr_week_start(2023, 1) == date(2023, 1, 1)
    assert mmwr_week_start(2021, 1) == date(2021, 1, 3)


def test_fixture_tables_are_filled(populated_warehouse):
    con = populated_warehouse
    for table in ("affect_windows", "symptom_reports", "forecasts", "forecast_scores", "affect_lift", "alerts",
                  "alert_events", "alert_acks", "dead_letters", "ingest_batches", "subscriptions", "email_outbox"):
        assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table


def test_admissions_come_from_the_real_flusight_file(populated_warehouse, data_dir):
    raw = pd.read_csv(data_dir / "flusight" / "target-hospital-admissions.csv", dtype={"location": str})
    raw = raw[(raw["location"] == "06") & (raw["date"] == "2023-01-07")]
    got = populated_warehouse.execute(
        "select count from symptom_reports where region_id = '06' and syndrome = 'flu_admissions' "
        "and period_end = date '2023-01-07'").fetchall()
    assert got == [(int(raw["value"].iloc[0]),)]
    assert set(flu_admissions()["region_id"]) == set(STATES)


def test_affect_windows_are_valid_and_simulated(populated_warehouse, populated_settings):
    k = populated_settings.privacy.k_min
    # every window is valid, except the planted legacy windows of FEW_OBSERVATIONS_REGION, written while
    # the deployment ran with a lower k_min (their cells fall below today's minimum)
    bad = populated_warehouse.execute(f"""
        select count(*) from affect_windows
        where not simulated or (n_observations < {k} and region_id <> '{FEW_OBSERVATIONS_REGION}')
           or valence_mean not between -1 and 1 or arousal_mean not between -1 and 1
           or distress_share not between 0 and 1 or confidence_mean not between 0 and 1
           or window_end <= window_start""").fetchone()[0]
    assert bad == 0
    legacy = populated_warehouse.execute(
        f"select max(n_observations) from affect_windows where region_id = '{FEW_OBSERVATIONS_REGION}'").fetchone()[0]
    assert legacy < k
    versions = populated_warehouse.execute("select count(distinct model_version) from affect_windows").fetchone()[0]
    assert versions == 2


def test_forecasts_are_complete_and_non_crossing(populated_warehouse):
    con = populated_warehouse
    levels = [r[0] for r in con.execute("select distinct output_type_id from forecasts order by 1").fetchall()]
    assert levels == QUANTILE_LEVELS
    crossing = con.execute("""
        select count(*) from (
          select value < lag(value) over (partition by run_id, model, location, horizon order by output_type_id) as crossed
          from forecasts) where crossed""").fetchone()[0]
    assert crossing == 0


def test_build_is_deterministic(populated_settings_factory, populated_settings):
    from affectwatch.warehouse import connect

    other = populated_settings_factory(seed=0)
    q = "select sum(valence_mean), sum(n_observations), count(*) from affect_windows"
    a = connect(populated_settings, read_only=True).execute(q).fetchone()
    b = connect(other, read_only=True).execute(q).fetchone()
    assert a == b
