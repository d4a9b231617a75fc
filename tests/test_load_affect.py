"""Survey affect loader (ingest/load_affect.py), as-of and suppression, against a real DuckLake warehouse."""
from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from affectwatch.privacy import Suppression
from affectwatch.settings import Settings
from tests.conftest import emptied
from analytics import survey_affect
from ingest.load_affect import AffectFileError, load_file, parse_file

HEADER = "geo_value,signal,time_value,issue,lag,value,stderr,sample_size,geo_type,data_source\n"


def _covidcast(path: Path, rows: list[str], gz: bool = False) -> Path:
    text = HEADER + "".join(r + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture
def settings(module_warehouse) -> Settings:
    return module_warehouse[0]


@pytest.fixture
def warehouse(module_warehouse):
    return emptied(module_warehouse[1], 'survey_affect', 'dead_letters')


def test_bad_rows_go_to_dead_letters_with_named_reasons(warehouse, settings, tmp_path):
    f = _covidcast(tmp_path / "mixed.csv", [
        "ca,smoothed_wdepressed_7d,2021-06-01,2021-06-06,5,12.5,0.4,3000,state,fb-survey",   # good
        "ny,smoothed_wdepressed_7d,2021-06-01,2021-06-06,5,11.0,0.5,2500,state,fb-survey",   # good
        "us,smoothed_wdepressed_7d,2021-06-01,2021-06-06,5,11.9,0.1,90000,nation,fb-survey",  # national: skipped
        "ca,smoothed_wdepressed_7d,2021-13-01,2021-06-06,5,12.5,0.4,3000,state,fb-survey",   # bad_date
        "ca,smoothed_wdepressed_7d,2021-06-02,2021-06-07,5,abc,0.4,3000,state,fb-survey",    # not_a_number
        "zz,smoothed_wdepressed_7d,2021-06-02,2021-06-07,5,12.0,0.4,3000,state,fb-survey",   # bad_region_id
        "tx,smoothed_wdepressed_7d,2021-06-02,2021-06-07,5,140,0.4,3000,state,fb-survey",    # value_out_of_range
        "tx,smoothed_wdepressed_7d,2021-06-02,2021-06-07,5,12.0,-1,3000,state,fb-survey",    # value_out_of_range
        "tx,smoothed_wdepressed_7d,2021-06-09,2021-06-07,-2,12.0,0.4,3000,state,fb-survey",  # issue_before_date
        "tx,smoothed_wdepressed_7d,2021-06-03,2021-06-08,5,,0.4,3000,state,fb-survey",       # missing_field
        "tx,smoothed_wdepressed 7d,2021-06-03,2021-06-08,5,10,0.4,3000,state,fb-survey",     # bad_indicator
        "ny,smoothed_wdepressed_7d,2021-06-01,2021-06-06,5,11.0,0.5,2500,state,fb-survey",   # duplicate_issue
    ])
    res = load_file(f, settings, con=warehouse)
    assert (res.rows, res.skipped, res.dead_letters) == (2, 1, 9)
    assert res.reason_counts == {"bad_date": 1, "not_a_number": 1, "bad_region_id": 1, "value_out_of_range": 2,
                                 "issue_before_date": 1, "missing_field": 1, "bad_indicator": 1, "duplicate_issue": 1}
    dead = warehouse.execute("select topic, reason, detail, raw from dead_letters order by detail").df()
    assert set(dead["topic"]) == {"file:mixed.csv"}
    assert any("value 'abc' is not a number" in d for d in dead["detail"])
    assert any(b"zz,smoothed_wdepressed_7d" in bytes(r) for r in dead["raw"])  # the raw row is kept
    rows = warehouse.execute("select region_id, date, indicator, source, modality, value, sample_size from survey_affect "
                             "order by region_id").fetchall()
    assert rows == [("06", date(2021, 6, 1), "wdepressed_7d", "delphi-covidcast:fb-survey", "survey", 12.5, 3000.0),
                    ("36", date(2021, 6, 1), "wdepressed_7d", "delphi-covidcast:fb-survey", "survey", 11.0, 2500.0)]


def test_revisions_by_issue_are_kept_and_reloads_are_idempotent(warehouse, settings, tmp_path):
    first = _covidcast(tmp_path / "v1.csv.gz", ["ca,smoothed_wworried_finances,2021-06-01,2021-06-06,5,30.0,0.8,3000,state,fb-survey",
                                                "ca,smoothed_wworried_finances,2021-06-02,2021-06-07,5,31.0,0.8,3000,state,fb-survey"], gz=True)
    second = _covidcast(tmp_path / "v2.csv", ["ca,smoothed_wworried_finances,2021-06-01,2021-06-20,19,33.0,0.7,3100,state,fb-survey"])
    assert load_file(first, settings, con=warehouse).rows == 2
    res = load_file(second, settings, con=warehouse)
    assert (res.rows, res.revisions) == (1, 1)
    again = load_file(first, settings, con=warehouse)
    assert (again.rows, again.unchanged, again.dead_letters) == (0, 2, 0)
    # the same issue re-sent with another value is not silently overwritten
    conflict = _covidcast(tmp_path / "v3.csv", ["ca,smoothed_wworried_finances,2021-06-01,2021-06-20,19,35.0,0.7,3100,state,fb-survey"])
    bad = load_file(conflict, settings, con=warehouse)
    assert (bad.rows, bad.reason_counts) == (0, {"conflicting_revision": 1})
    stored = warehouse.execute("select issue, value from survey_affect where date = '2021-06-01' order by issue").fetchall()
    assert stored == [(date(2021, 6, 6), 30.0), (date(2021, 6, 20), 33.0)]


def test_as_of_never_uses_a_value_issued_after_the_reference_date(warehouse, settings, tmp_path):
    from analyst.views import install_views

    f = _covidcast(tmp_path / "asof.csv", [
        "ca,smoothed_wdepressed_7d,2021-06-01,2021-06-06,5,12.0,0.4,3000,state,fb-survey",
        "ca,smoothed_wdepressed_7d,2021-06-01,2021-06-20,19,15.0,0.4,3000,state,fb-survey",   # revision
        "ca,smoothed_wdepressed_7d,2021-06-10,2021-06-15,5,13.0,0.4,3000,state,fb-survey",    # not yet issued on 06-12
    ])
    load_file(f, settings, con=warehouse)
    df, _, _ = parse_file(f)
    df["date"], df["issue"] = pd.to_datetime(df["date"]), pd.to_datetime(df["issue"])
    for ref, expect in [("2021-06-05", {}), ("2021-06-12", {"2021-06-01": 12.0}),
                        ("2021-06-19", {"2021-06-01": 12.0, "2021-06-10": 13.0}),
                        ("2021-06-20", {"2021-06-01": 15.0, "2021-06-10": 13.0})]:
        known = survey_affect.as_of(df, ref)
        assert (known["issue"] <= pd.Timestamp(ref)).all()
        assert {str(d.date()): v for d, v in zip(known["date"], known["value"])} == expect
    install_views(warehouse, settings)
    sql = warehouse.execute("select date, value, issue from analyst.main.survey_affect_known_at(date '2021-06-12')").fetchall()
    assert sql == [(date(2021, 6, 1), 12.0, date(2021, 6, 6))]
    latest = survey_affect.from_warehouse(warehouse)
    assert dict(zip(latest["date"].astype(str), latest["value"])) == {"2021-06-01": 15.0, "2021-06-10": 13.0}
    # the covariates built for a reference date see only that vintage (value carried forward, never ahead)
    feats = survey_affect.features(survey_affect.as_of(df, "2021-06-12"), ["wdepressed_7d"], "2021-06-12")
    assert set(feats["wdepressed_7d"].dropna()) == {12.0}


def test_cells_below_the_minimum_sample_size_are_suppressed(warehouse, settings, tmp_path):
    from analyst.views import install_views

    assert settings.privacy.min_survey_sample_size == 100
    f = _covidcast(tmp_path / "small.csv", [
        "ak,smoothed_wdepressed_7d,2021-06-01,2021-06-06,5,12.0,1.4,99.9,state,fb-survey",
        "ak,smoothed_wdepressed_7d,2021-06-02,2021-06-07,5,12.5,1.4,100,state,fb-survey",
        "ak,smoothed_wdepressed_7d,2021-06-03,2021-06-08,5,12.7,1.4,,state,fb-survey",
    ])
    load_file(f, settings, con=warehouse)
    install_views(warehouse, settings)
    cells = warehouse.execute("select date, value, stderr, value_lo, suppression, data_label from analyst.main.survey_affect_region_day "
                              "order by date").fetchall()
    code = int(Suppression.TOO_SMALL_SAMPLE)
    assert cells[0] == (date(2021, 6, 1), None, None, None, code, "REAL")
    assert cells[1][1:3] == (12.5, 1.4) and cells[1][4] == 0 and cells[1][3] == pytest.approx(12.5 - 1.96 * 1.4)
    assert cells[2][1] is None and cells[2][4] == code
    df, _, _ = parse_file(f)
    py = survey_affect.suppress(df, settings.privacy.min_survey_sample_size)
    assert list(py["suppression"]) == [code, 0, code] and py["value"].isna().tolist() == [True, False, True]
    assert Suppression(code).label.startswith("suppressed")


def test_plain_csv_and_cli(warehouse, settings, tmp_path, monkeypatch):
    f = tmp_path / "plain.csv"
    f.write_text("region_id,date,indicator,value,stderr,sample_size,issue,source\n"
                 "06,2021-06-01,wdepressed_7d,12.0,0.4,3000,2021-06-06,my-survey\n"
                 "California,2021-06-02,wdepressed_7d,12.2,,,2021-06-07,my-survey\n"
                 "99,2021-06-02,wdepressed_7d,12.2,0.4,3000,2021-06-07,my-survey\n")
    df, bad, _ = parse_file(f, "csv")
    assert list(df["region_id"]) == ["06", "06"] and [b.reason for b in bad] == ["bad_region_id"]
    with pytest.raises(AffectFileError, match="columns missing"):
        parse_file(f, "covidcast")
    from affectwatch import settings as settings_mod
    from affectwatch.cli import app

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(settings.data_dir))
    settings_mod.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["load-affect", str(f), "--format", "csv"])
        assert result.exit_code == 0, result.output
        assert "2 row(s) written" in result.output and "modality survey (REAL)" in result.output
        assert "bad_region_id" in result.output
        bad = CliRunner().invoke(app, ["load-affect", str(f), "--format", "covidcast"])
        assert bad.exit_code == 2 and "columns missing" in bad.output
    finally:
        settings_mod.get_settings.cache_clear()
