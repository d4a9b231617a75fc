"""Symptom CSV loader (ingest/load_symptoms.py) against a real DuckLake warehouse, with tiny real files."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from affectwatch.settings import Settings
from tests.conftest import emptied
from affectwatch import mmwr
from ingest.load_symptoms import SHARE_SCALE, SymptomFileError, load_file

HERE = Path(__file__).parent / "data"


@pytest.fixture
def settings(module_warehouse) -> Settings:
    return module_warehouse[0]


@pytest.fixture
def warehouse(module_warehouse):
    return emptied(module_warehouse[1], 'symptom_reports', 'dead_letters')


def _rows(con, where: str = "true", params=()):
    return con.execute(
        f"select region_id, syndrome, period_start, period_end, count, denominator, source, origin "
        f"from symptom_reports where {where} order by syndrome, region_id, period_end, reported_at",
        list(params),
    ).fetchall()


def test_flusight_admissions(warehouse, settings):
    res = load_file(HERE / "flusight_admissions_small.csv", settings, con=warehouse)
    assert (res.fmt, res.rows, res.revisions, res.dead_letters) == ("flusight", 6, 0, 0)
    assert res.skip_counts == {"national_total": 2}
    rows = _rows(warehouse)
    assert ("06", "flu_admissions", date(2023, 1, 1), date(2023, 1, 7), 913, None, "flusight-nhsn",
            "file:flusight_admissions_small.csv") in rows
    assert {r[0] for r in rows} == {"06", "36", "48"}  # 'US' national rows are skipped


def test_flusight_shares_are_not_turned_into_counts(warehouse, settings):
    res = load_file(HERE / "flusight_ed_prop_small.csv", settings, con=warehouse)
    assert res.rows == 6
    (row,) = _rows(warehouse, "region_id = '36' and period_end = ?", [date(2023, 1, 7)])
    assert row[1] == "flu_ed_visits"
    assert row[5] == SHARE_SCALE and row[4] / row[5] == pytest.approx(0.0171)  # share kept, as count per 1e6
    assert "share" in row[6]


def test_ilinet_names_weeks_missing_and_nyc(warehouse, settings):
    res = load_file(HERE / "ilinet_small.csv", settings, con=warehouse)
    assert (res.fmt, res.rows, res.dead_letters) == ("ilinet", 6, 0)
    assert res.skip_counts == {"not_a_state": 3, "missing_value": 3}  # NYC has no state FIPS; CNMI is all 'X'
    rows = _rows(warehouse)
    assert ("01", "ili", date(2022, 12, 11), date(2022, 12, 17), 1902, 45670, "ilinet", "file:ilinet_small.csv") in rows
    assert {r[3] for r in rows} == {mmwr.week_end(2022, w) for w in (50, 51, 52)}


def test_essence_aliases_weekly(warehouse, settings):
    res = load_file(HERE / "essence_weekly_small.csv", settings, con=warehouse, syndrome="ili", source="essence-test")
    assert (res.fmt, res.rows) == ("essence", 6)
    rows = _rows(warehouse, "region_id = '06'")
    assert rows[0][2:6] == (date(2022, 12, 11), date(2022, 12, 17), 18479, 286975)  # Saturdays -> MMWR weeks


def test_identical_reload_adds_nothing_and_changed_file_is_a_revision(warehouse, settings, tmp_path):
    src = HERE / "flusight_admissions_small.csv"
    first = load_file(src, settings, con=warehouse)
    again = load_file(src, settings, con=warehouse)
    assert (again.rows, again.unchanged) == (0, first.rows)
    changed = tmp_path / src.name
    changed.write_text(src.read_text().replace("2023-01-07,06,California,913.0", "2023-01-07,06,California,920.0"))
    rev = load_file(changed, settings, con=warehouse)
    assert (rev.rows, rev.revisions, rev.unchanged) == (1, 1, 5)
    both = _rows(warehouse, "region_id = '06' and period_end = ?", [date(2023, 1, 7)])
    assert [r[4] for r in both] == [913, 920]  # both revisions kept, in reporting order
    # the same values arriving through another format are still recognised as unchanged
    assert load_file(changed, settings, con=warehouse).rows == 0


def test_reported_at_column_orders_revisions(warehouse, settings, tmp_path):
    f = tmp_path / "export.csv"
    f.write_text("week_end,state_fips,count,total,report_date\n"
                 "2023-01-07,06,10,100,2023-01-10\n"
                 "2023-01-07,06,12,100,2023-01-17\n")
    res = load_file(f, settings, con=warehouse, syndrome="resp")
    assert (res.rows, res.revisions) == (2, 0)  # both new in this load
    latest = warehouse.execute("select count from symptom_reports order by reported_at desc limit 1").fetchone()[0]
    assert latest == 12


def test_hub_time_series_keeps_every_vintage_of_one_target(warehouse, settings, tmp_path):
    """The FluSight hub's time series (as_of, target, target_end_date, location, observation): each
    vintage is a revision reported at its as_of; rows of another target are skipped and counted."""
    f = tmp_path / "time-series.csv"
    f.write_text('"as_of","target","target_end_date","location","location_name","observation","weekly_rate"\n'
                 '2025-01-11,"wk inc flu hosp",2025-01-04,"06","California",800,2.0\n'
                 '2025-01-11,"wk inc flu hosp",2025-01-04,"US","US",9000,2.6\n'
                 '2025-01-18,"wk inc flu hosp",2025-01-04,"06","California",910,2.3\n'
                 '2025-01-18,"wk inc flu hosp",2025-01-11,"06","California",700,1.8\n'
                 '2025-01-18,"wk inc flu prop ed visits",2025-01-11,"06","California",0.05,\n')
    res = load_file(f, settings, con=warehouse)
    assert (res.fmt, res.rows, res.dead_letters) == ("flusight", 3, 0)
    assert res.skip_counts == {"other_target": 1, "national_total": 1}
    rows = warehouse.execute("select period_end, count, reported_at from symptom_reports where syndrome = 'flu_admissions' "
                             "order by period_end, reported_at").fetchall()
    assert [(r[0], r[1], r[2].date()) for r in rows] == [
        (date(2025, 1, 4), 800, date(2025, 1, 11)), (date(2025, 1, 4), 910, date(2025, 1, 18)),
        (date(2025, 1, 11), 700, date(2025, 1, 18))]
    two = tmp_path / "two_targets.csv"
    two.write_text("as_of,target,target_end_date,location,observation\n2025-01-11,a,2025-01-04,06,3\n2025-01-11,b,2025-01-04,06,4\n")
    with pytest.raises(SymptomFileError, match=r"several targets \['a', 'b'\]"):
        load_file(two, settings, con=warehouse)


def test_daily_essence_and_state_names(warehouse, settings, tmp_path):
    f = tmp_path / "daily.csv"
    f.write_text("date,state,data_count,all_count\n2023-01-02,Texas,5,90\n2023-01-03,Texas,7,95\n")
    res = load_file(f, settings, con=warehouse, syndrome="gi")
    assert res.rows == 2
    assert _rows(warehouse)[0][:4] == ("48", "gi", date(2023, 1, 2), date(2023, 1, 2))
    counties = tmp_path / "counties.csv"  # Los Angeles County; zero stripped by a spreadsheet; a made-up county
    counties.write_text("day,county_fips,visits\n01/02/2023,06037,4\n01/02/2023,6037,4\n01/02/2023,06999,1\n")
    res = load_file(counties, settings, con=warehouse, syndrome="gi")
    assert (res.rows, res.reason_counts) == (1, {"duplicate_period": 1, "bad_region_id": 1})
    assert _rows(warehouse, "region_id = '06037'")[0][2] == date(2023, 1, 2)


BAD_ROWS = [
    ("value", "2023-01-07,06,California,abc", "not_a_number", "row 2 (line 3): value 'abc' is not a number"),
    ("value", "2023-01-07,06,California,-4", "value_out_of_range", "value '-4' is negative"),
    ("value", "2023-01-07,06,California,3.5", "not_integer", "value '3.5' is not a whole number"),
    ("date", "2023-01-06,06,California,4", "bad_period", "2023-01-06 is a Friday"),
    ("date", "2023-13-07,06,California,4", "bad_date", "date '2023-13-07' is not a date"),
    ("location", "2023-01-07,99,Nowhere,4", "bad_region_id", "location '99' is not a known state FIPS code"),
    ("location", "2023-01-07,Atlantis,Atlantis,4", "bad_region_id", "location 'Atlantis'"),
    ("dup", "2023-01-07,06,California,913", "duplicate_period", "repeats region 06"),
]


@pytest.mark.parametrize("what,line,reason,detail", BAD_ROWS, ids=[b[2] + "-" + b[0] for b in BAD_ROWS])
def test_bad_rows_go_to_dead_letters(warehouse, settings, tmp_path, what, line, reason, detail):
    f = tmp_path / "bad.csv"
    f.write_text(f"date,location,location_name,value\n2023-01-07,06,California,913\n{line}\n")
    res = load_file(f, settings, con=warehouse)
    assert (res.rows, res.dead_letters, res.reason_counts) == (1, 1, {reason: 1})
    topic, got_reason, got_detail, raw = warehouse.execute("select topic, reason, detail, raw from dead_letters").fetchone()
    assert (topic, got_reason) == ("file:bad.csv", reason)
    assert detail in got_detail and "line 3" in got_detail
    assert raw == line.encode()


BAD_FILES = [
    ("empty.csv", "", "the file is empty"),
    ("header_only.csv", "date,location,value\n", "no data rows"),
    ("unknown.csv", "when,where,how_many\n2023-01-07,06,3\n", "cannot tell the format from the columns ['when', 'where', 'how_many']"),
    ("no_region.csv", "week_end,count\n2023-01-07,3\n", "needed region: one of ['region_id', 'fips'"),
    ("no_syndrome.csv", "week_end,fips,count\n2023-01-07,06,3\n", "no syndrome"),
    ("ilinet_cut.csv", "PERCENTAGE OF VISITS FOR INFLUENZA-LIKE-ILLNESS\nREGION TYPE,REGION,YEAR,WEEK,ILITOTAL\nStates,Ohio,2022,50,4\n",
     "missing ['TOTAL PATIENTS']"),
    ("binary.csv", b"\xff\xfe\x00\x01garbage", "not UTF-8"),
]


@pytest.mark.parametrize("name,content,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_raise_clear_errors(warehouse, settings, tmp_path, name, content, message):
    f = tmp_path / name
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SymptomFileError) as err:
        load_file(f, settings, con=warehouse)
    assert message in str(err.value)
    assert warehouse.execute("select count(*) from symptom_reports").fetchone()[0] == 0


def test_explicit_format_checks_its_columns(warehouse, settings):
    with pytest.raises(SymptomFileError, match=r"FluSight columns missing .*needed location"):
        load_file(HERE / "essence_weekly_small.csv", settings, con=warehouse, fmt="flusight")
    with pytest.raises(SymptomFileError, match="syndrome 'Bad Name'"):
        load_file(HERE / "essence_weekly_small.csv", settings, con=warehouse, syndrome="Bad Name")


def test_mmwr_weeks():
    assert mmwr.week_end(2010, 40) == date(2010, 10, 9)  # first week of the ILINet file
    assert mmwr.week_end(2023, 39) == date(2023, 9, 30)  # last FluSight date
    assert mmwr.weeks_in_year(2014) == 53 and mmwr.mmwr_week(date(2015, 1, 3)) == (2014, 53)
    assert mmwr.mmwr_week(date(2023, 1, 1)) == (2023, 1)
    with pytest.raises(ValueError, match="weeks 1..52, not 53"):
        mmwr.week_end(2023, 53)


def test_cli_reports_counts_and_dead_letters(warehouse, settings, tmp_path, monkeypatch):
    from affectwatch import settings as settings_mod
    from affectwatch.cli import app

    monkeypatch.setenv("AFFECTWATCH_DATA_DIR", str(settings.data_dir))
    settings_mod.get_settings.cache_clear()
    try:
        f = tmp_path / "mixed.csv"
        f.write_text("date,location,location_name,value\n2023-01-07,06,California,913\n2023-01-07,36,New York,x1\n")
        result = CliRunner().invoke(app, ["load-symptoms", str(f)])
        assert result.exit_code == 0, result.output
        assert "1 row(s) written" in result.output and "1 dead letter(s)" in result.output
        bad = CliRunner().invoke(app, ["load-symptoms", str(HERE / "README.md")])
        assert bad.exit_code == 2 and "cannot tell the format" in bad.output
    finally:
        settings_mod.get_settings.cache_clear()


def test_reported_lag_days_dates_a_historical_backfill(warehouse, settings, tmp_path):
    """A backfill with reported_lag_days is visible as of its publication time, not before."""
    from ingest.load_symptoms import load_file

    f = tmp_path / "flu.csv"
    f.write_text("date,location,location_name,value\n2023-01-07,06,California,120\n2023-01-14,06,California,150\n")
    load_file(f, settings, syndrome="flu_admissions", con=warehouse, reported_lag_days=4)
    rows = warehouse.execute(
        "select period_end, reported_at from symptom_reports order by period_end").fetchall()
    assert [r[1].isoformat()[:16] for r in rows] == ["2023-01-11T16:00", "2023-01-18T16:00"]
