"""Bypass attempts against a real analyst session: each is refused, or harmless - never a raw value.

Every attempt runs twice on a session over the fixture's analyst store: through the shell (statement
guard first) and straight on the DuckDB connection (no guard), so the table shows that the store's
session settings alone hold the boundary. Planted secrets: the device ids and exact raw valence
values of the windows in the fixture's suppressed cells, and a marker in CSV/JSON/Parquet files
next to the warehouse.
"""
from __future__ import annotations

import json
import re

import duckdb
import pytest

from analyst.guard import AnalystQueryError
from analyst.sqlshell import SqlShellError, dot_command, open_session, render

MARKER = "PLANTED-SECRET-7319"
_NUMBER = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")

# (name, SQL template, must_fail_without_guard). Templates use {data} (the warehouse Parquet dir),
# {dir} (the data dir), {csv}/{json}/{parquet} (planted files), {catalog} (the raw DuckLake catalog),
# {out} (a path an attempt would write to).
ATTEMPTS = [
    ("replacement scan, warehouse glob **", "select device_id, n_observations, distress_share from "
     "'{data}**/affect_windows/**.parquet' limit 5", True),
    ("replacement scan, warehouse *.parquet", "select * from '{data}main/affect_windows/*.parquet'", True),
    ("replacement scan, any parquet", "from '{dir}/**/*.parquet'", True),
    ("replacement scan, planted parquet", "select * from '{parquet}'", True),
    ("replacement scan, csv", "select * from '{csv}'", True),
    ("replacement scan, json", "select * from '{json}'", True),
    ("read_parquet glob", "select * from read_parquet('{data}**/*.parquet')", True),
    ("read_csv", "select * from read_csv('{csv}')", True),
    ("read_csv_auto /etc/passwd", "select * from read_csv_auto('/etc/passwd')", True),
    ("read_json", "select * from read_json('{json}')", True),
    ("read_text", "select content from read_text('{csv}')", True),
    ("read_blob", "select content from read_blob('{parquet}')", True),
    ("glob()", "select * from glob('{dir}/**')", True),
    ("parquet_metadata", "select * from parquet_metadata('{parquet}')", True),
    ("sniff_csv", "select * from sniff_csv('{csv}')", True),
    ("read_parquet as a scalar subquery", "select (select count(*) from read_parquet('{parquet}')) as n", True),
    ("ATTACH the raw DuckLake catalog", "attach 'ducklake:sqlite:{catalog}' as raw (read_only)", True),
    ("ATTACH the catalog as SQLite", "attach '{catalog}' as raw (type sqlite)", True),
    ("ATTACH a new database file", "attach '{out}.duckdb' as x", True),
    ("COPY TO a file", "copy (select * from affect_region_week) to '{out}.csv'", True),
    ("COPY FROM a file", "copy affect_region_week from '{csv}'", True),
    ("EXPORT DATABASE", "export database '{out}_export'", True),
    ("INSTALL httpfs", "install httpfs", True),
    ("LOAD ducklake", "load ducklake", True),
    ("httpfs URL (loopback)", "select * from 'http://127.0.0.1:9/affect_windows.parquet'", True),
    ("SET enable_external_access", "set enable_external_access = true", True),
    ("RESET enable_external_access", "reset enable_external_access", True),
    ("SET lock_configuration off", "set lock_configuration = false", True),
    ("PRAGMA that changes a setting", "pragma enable_external_access", True),
    ("PRAGMA threads", "pragma threads = 1", True),
    ("getenv", "select getenv('HOME') as home", True),
    ("query()", "select * from query('select * from read_csv(''{csv}'')')", True),
    ("query_table() on a file", "select * from query_table('{csv}')", True),
    ("multiple statements", "select 1; select * from read_csv('{csv}')", True),
    ("comment and case tricks", "SeLeCt * FrOm /* view */ ReAd_CsV('{csv}') -- trailing", True),
    ("quoted-identifier trick", 'select * from "{csv}"', True),
    ("CREATE TABLE", "create table copy_of_cells as select * from affect_region_day", True),
    ("INSERT", "insert into affect_region_day select * from affect_region_day", True),
    ("UPDATE", "update affect_region_day set valence_mean = 0", True),
    ("DELETE", "delete from publications", True),
    ("DROP", "drop table affect_region_day", True),
    ("CREATE MACRO", "create macro leak() as table select * from read_csv('{csv}')", True),
    ("DETACH the store", "detach analyst", True),
    ("CREATE SECRET", "create secret s3leak (type s3, key_id 'k', secret 's')", False),
    ("CALL a table function", "call glob('{dir}/*')", True),
    ("CREATE TEMP TABLE from a file", "create temp table t as select * from read_csv('{csv}')", True),
    ("FROM-first read", "from read_csv('{csv}')", True),
    ("raw warehouse table", "select * from wh.affect_windows", True),
    ("DuckLake metadata", "select * from __ducklake_metadata_wh.ducklake_data_file", True),
    ("staging model", "select * from staging.stg_affect_windows", True),
    ("current_setting trick", "select current_setting('enable_external_access') as a, "
     "current_setting('lock_configuration') as b, current_setting('allowed_directories') as c", False),
    ("duckdb_databases()", "select database_name, path from duckdb_databases()", False),
    ("duckdb_settings()", "select name, value from duckdb_settings() where name like '%external%'", False),
    ("CHECKPOINT", "checkpoint", False),
]


@pytest.fixture(scope="module")
def planted(populated_settings, tmp_path_factory):
    """Raw values an analyst must never see, and files holding the marker next to the warehouse."""
    from affectwatch.warehouse import connect
    from analyst.views import install_views

    con = connect(populated_settings, read_only=True)
    try:
        install_views(con, populated_settings)
        rows = con.execute("""
            select w.device_id, w.valence_mean from wh.affect_windows w
            join analyst.main.affect_region_week c on c.region_id = w.region_id
             and w.window_start >= c.week_start and w.window_start < c.week_start + interval 7 day
            where c.suppression in (1, 2)""").fetchall()
    finally:
        con.close()
    assert rows, "the fixture has windows in its suppressed cells"
    d = populated_settings.data_dir
    (d / "planted.csv").write_text(f"device_id,valence\n{MARKER},0.123456\n")
    (d / "planted.json").write_text(json.dumps([{"device_id": MARKER}]))
    scratch = duckdb.connect()
    scratch.execute(f"copy (select '{MARKER}' as device_id) to '{d / 'planted.parquet'}' (format parquet)")
    scratch.close()
    # device ids anywhere; raw valence values as numbers (those with 4+ significant digits, so that a
    # round value such as 0.5 elsewhere in a view is not taken for one)
    secrets = {"strings": {MARKER} | {r[0] for r in rows},
               "numbers": {repr(float(r[1])) for r in rows if len(repr(abs(float(r[1]))).strip("0.")) >= 4}}
    assert len(secrets["strings"]) > 3 and secrets["numbers"]
    out = tmp_path_factory.mktemp("bypass-out") / "leak"
    paths = {"data": populated_settings.data_path, "dir": str(d), "csv": str(d / "planted.csv"),
             "json": str(d / "planted.json"), "parquet": str(d / "planted.parquet"),
             "catalog": populated_settings.catalog.removeprefix("sqlite:"), "out": str(out)}
    return {"secrets": secrets, "paths": paths, "out": out}


@pytest.fixture(scope="module")
def session(populated_settings):
    s = open_session(populated_settings)
    yield s
    s.con.close()


def _assert_no_leak(text: str, secrets: dict) -> None:
    """No planted string anywhere in ``text``, and no planted raw value as a number in it."""
    leaked = [x for x in secrets["strings"] if x in text]
    leaked += sorted(secrets["numbers"] & set(_NUMBER.findall(text)))
    assert not leaked, f"raw values leaked: {leaked[:3]}"


def _still_locked(con) -> None:
    assert con.execute("select current_setting('enable_external_access'), current_setting('lock_configuration')"
                       ).fetchone() == (False, True)
    assert {r[0] for r in con.execute("select database_name from duckdb_databases() where not internal").fetchall()} \
        == {"analyst"}


def test_the_table_is_big_enough():
    assert len(ATTEMPTS) >= 30 and len({a[0] for a in ATTEMPTS}) == len(ATTEMPTS)


@pytest.mark.parametrize("name,template,must_fail", ATTEMPTS, ids=[a[0] for a in ATTEMPTS])
def test_bypass_attempt_is_refused_or_harmless(session, planted, name, template, must_fail):
    sql = template.format(**planted["paths"])
    # 1. through the shell: the guard refuses it (or DuckDB does), with a message and nothing else
    try:
        text = render(*session.run(sql), "csv")
    except (AnalystQueryError, SqlShellError) as exc:
        text = str(exc)
    else:
        assert not must_fail, f"{name}: the shell ran it: {text[:300]}"
    _assert_no_leak(text, planted["secrets"])
    # 2. straight on the connection, no guard: the session settings hold the boundary
    try:
        cur = session.con.execute(sql)
        text = render([d[0] for d in cur.description], cur.fetchall(), "csv") if cur.description else "ok"
    except duckdb.Error as exc:
        text = str(exc)
    else:
        assert not must_fail, f"{name}: ran without the guard: {text[:300]}"
    _assert_no_leak(text, planted["secrets"])
    _still_locked(session.con)
    assert not list(planted["out"].parent.iterdir()), "an attempt wrote a file"


def test_python_variables_are_not_scanned(session):
    import pandas as pd

    leaky_frame = pd.DataFrame({"device_id": [MARKER]})
    assert len(leaky_frame) == 1
    with pytest.raises(duckdb.Error):
        session.con.execute("select * from leaky_frame")


def test_shell_dot_commands_cannot_read_files(session, planted):
    for line in (f".read {planted['paths']['csv']}", f".import {planted['paths']['csv']} t", ".shell cat /etc/passwd",
                 f".open {planted['paths']['catalog']}", ".output /tmp/x"):
        out = dot_command(session, line)
        assert out.startswith("error: unknown command"), line
        _assert_no_leak(out, planted["secrets"])


def test_published_marts_hold_no_device_ids_or_raw_values(session, planted):
    """Dump every published table: the planted raw values appear nowhere in the analyst store."""
    names = [r[0] for r in session.con.execute("select table_name from duckdb_tables()").fetchall()]
    assert "affect_region_week" in names and not any(n.startswith(("stg_", "int_")) for n in names)
    assert "privacy_params" not in names
    for n in names:
        cur = session.con.execute(f"select * from {n}")
        _assert_no_leak(render([d[0] for d in cur.description], cur.fetchall(), "csv"), planted["secrets"])
