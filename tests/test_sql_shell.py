"""`affectwatch sql`: analyst-store sessions, the statement guard, output formats, time travel."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import duckdb
import pytest
from typer.testing import CliRunner

from affectwatch.settings import REPO_ROOT
from analyst.guard import AnalystQueryError, check_analyst_statement
from analyst.sqlshell import SqlShellError, open_session, render, repl, statements


@pytest.fixture(scope="module")
def session(populated_settings):
    s = open_session(populated_settings)
    yield s
    s.con.close()


@pytest.fixture
def cli(populated_settings, monkeypatch):
    """Run the real `affectwatch` typer app in-process against the fixture warehouse."""
    import analyst.commands as commands
    from affectwatch.cli import app

    monkeypatch.setattr(commands, "get_settings", lambda: populated_settings)
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(app, ["sql", *args], input=input)


ALLOWED = [
    "select * from affect_region_week",
    "select * from analyst.affect_region_week",
    "select * from analyst.main.alerts_open",
    "describe affect_region_day",
    "summarize forecasts_latest",
    "show tables",
    "with x as (select 1 as a) select * from x",
    "select * from symptoms_known_at(now())",
    "select * from publications",
    "select table_name from information_schema.tables",
]
REFUSED = [
    ("insert into wh.dead_letters (reason, received_at) values ('x', now())", "insert statements are not allowed"),
    ("delete from analyst.staging.privacy_params", "delete statements are not allowed"),
    ("create table t as select 1", "create statements are not allowed"),
    ("attach '/tmp/x.db' as x", "attach statements are not allowed"),
    ("copy (select 1) to '/tmp/x.csv'", "copy statements are not allowed"),
    ("set enable_external_access = true", "set statements are not allowed"),
    ("select * from wh.affect_windows", "wh.affect_windows is outside the analyst views"),
    ("select * from wh.main.affect_windows", "wh.main.affect_windows is outside the analyst views"),
    ("describe wh.affect_windows", "wh.affect_windows is outside the analyst views"),
    ("select count(*) from affect_region_week where region_id in (select region_id from wh.affect_windows)",
     "wh.affect_windows is outside"),
    ("select * from analyst.staging.stg_affect_windows", "internal staging model with device-level rows"),
    ("select * from int_affect_cells", "internal staging model"),
    ("select * from __ducklake_metadata_wh.ducklake_snapshot", "outside the analyst views"),
    ("select * from read_parquet('/tmp/*.parquet')", "table function read_parquet() is not allowed"),
    ("select * from query('select * from wh.affect_windows')", "table function query() is not allowed"),
    ("select 1; insert into wh.alerts select * from wh.alerts", "insert statements are not allowed"),
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_guard_allows_reads_of_analyst_views(session, sql):
    check_analyst_statement(session.con, sql)
    session.run(sql)


@pytest.mark.parametrize("sql,message", REFUSED)
def test_guard_refuses_writes_raw_tables_and_file_access(session, sql, message):
    with pytest.raises(AnalystQueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        session.run(sql)


def test_warehouse_itself_is_read_only_even_without_the_guard(populated_settings):
    raw = open_session(populated_settings, raw=True)
    assert raw.run("select count(*) from wh.affect_windows")[1][0][0] > 0
    with pytest.raises(SqlShellError, match="read-only"):
        raw.run("insert into wh.dead_letters (reason, received_at) values ('x', now())")
    with pytest.raises(duckdb.Error):
        raw.con.execute("delete from wh.alerts")
    with pytest.raises(duckdb.Error):  # no reading arbitrary files, and the setting is locked
        raw.con.execute("select * from read_csv('/etc/passwd')")
    with pytest.raises(duckdb.Error):
        raw.con.execute("set enable_external_access = true")


def test_cli_query_formats(cli):
    sql = "select region_id, suppression from affect_region_week where suppression in (1, 2) order by region_id"
    as_json = cli("--query", sql, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout.strip().splitlines()[-1]) == [
        {"region_id": "04013", "suppression": 1}, {"region_id": "25", "suppression": 2}]
    as_csv = cli("-q", sql, "--format", "csv")
    assert list(csv.reader(io.StringIO(as_csv.stdout.strip()))) == [["region_id", "suppression"], ["04013", "1"], ["25", "2"]]
    as_table = cli("-q", sql)
    assert "| 04013     | 1           |" in as_table.stdout and "(2 rows)" in as_table.stdout


def test_cli_refuses_writes_with_exit_code(cli):
    res = cli("--query", "insert into wh.dead_letters (reason, received_at) values ('x', now())")
    assert res.exit_code == 1 and "insert statements are not allowed" in res.output
    res = cli("--raw", "--query", "insert into wh.dead_letters (reason, received_at) values ('x', now())")
    assert res.exit_code == 1 and "read-only" in res.output
    res = cli("--query", "select 1", "--format", "xml")
    assert res.exit_code == 1 and "unknown format 'xml'" in res.output


def test_cli_shell_session_from_stdin(cli):
    script = "\n".join([
        ".mode csv",
        "select region_id, count(*) as n",
        "from affect_region_week",
        "where region_id = '06' group by 1;",
        ".describe affect_region_week",
        "select * from wh.affect_windows;",
        ".tables",
        ".quit",
        "select 'not reached';",
    ]) + "\n"
    res = cli(input=script)
    out = res.stdout
    assert "region_id,n\n06,8" in out
    assert "valence_mean,DOUBLE,\"[-1, 1]\",Device-weighted mean valence; NULL when suppressed." in out
    assert "error: wh.affect_windows is outside the analyst views" in out
    assert "fused_region_week" in out and "not reached" not in out
    assert res.exit_code == 1  # one statement failed


def test_statement_grouping():
    lines = ["select 1", "  , 2;", ".tables", "", "select 3; ", "select 4"]
    assert list(statements(lines)) == ["select 1\n  , 2;", ".tables", "select 3; ", "select 4"]
    # a comment line ending with ';' (example 08's header) does not cut the statement
    assert list(statements(["-- NULL for alerts nobody acknowledged;", "select 5;"])) == [
        "-- NULL for alerts nobody acknowledged;\nselect 5;"]


@pytest.fixture(scope="module")
def two_publications(populated_settings, tmp_path_factory):
    """A second analyst store of the fixture: publication 1 from the warehouse before the symptom
    revisions were written, publication 2 from the warehouse now."""
    from analyst.store import refresh
    from affectwatch.settings import AnalystSettings

    s = populated_settings.model_copy(update={"analyst": AnalystSettings(store_dir=str(tmp_path_factory.mktemp("store")))})
    raw = open_session(s, raw=True)
    snaps = raw.run("select snapshot_id from ducklake_snapshots('wh') order by snapshot_id")[1]
    raw.con.close()
    first = refresh(s, warehouse_snapshot=snaps[-2][0])
    second = refresh(s)
    assert (first["publication_id"], second["publication_id"]) == (1, 2) and second["published"]
    assert refresh(s)["published"] is False  # nothing changed: no new publication
    return s


def test_as_of_snapshot_returns_the_earlier_state(two_publications):
    s = two_publications
    now = open_session(s)
    assert now.publication == 2
    pubs = now.run("select publication_id, published_at from publications order by publication_id")[1]
    assert [p[0] for p in pubs] == [1, 2]
    now_counts = now.run("select count(*), max(revision) from symptoms_as_reported")[1][0]
    then = open_session(s, snapshot=1)
    then_counts = then.run("select count(*), max(revision) from symptoms_as_reported")[1][0]
    assert now_counts == (618, 2) and then_counts == (608, 1)
    tx_then = then.run("select count from symptoms_latest where region_id = '48' and syndrome = 'flu_admissions' "
                       "and period_end = date '2023-06-24'")[1]
    tx_now = now.run("select first_count, count from symptoms_latest where region_id = '48' and syndrome = "
                     "'flu_admissions' and period_end = date '2023-06-24'")[1]
    assert tx_then[0][0] == tx_now[0][0] != tx_now[0][1]  # back then only the first (low) report existed
    by_time = open_session(s, as_of=str(pubs[0][1]))
    assert by_time.publication == 1
    assert by_time.run("select count(*) from symptoms_as_reported")[1][0][0] == 608
    assert by_time.run("select count(*) from symptoms_known_at(now())")[1][0][0] > 0  # macros travel too


def test_unknown_publication_or_time_is_a_clear_error(two_publications):
    with pytest.raises(SqlShellError, match=r"no analyst publication 7; available: 1\.\.2"):
        open_session(two_publications, snapshot=7)
    with pytest.raises(SqlShellError, match="nothing was published by 2001-01-01"):
        open_session(two_publications, as_of="2001-01-01 00:00:00+00")
    with pytest.raises(SqlShellError, match="not a timestamp"):
        open_session(two_publications, as_of="yesterday-ish")


def test_no_store_yet_says_how_to_make_one(settings):
    with pytest.raises(SqlShellError, match="run `affectwatch analyst refresh`"):
        open_session(settings)


def test_render_table_shows_nulls_and_counts():
    text = render(["a", "b"], [(1, None), (2.5, "x")], "table")
    assert "| NULL |" in text and "(2 rows)" in text


@pytest.mark.slow
def test_console_script_end_to_end(populated_settings):
    env = {**os.environ, "AFFECTWATCH_DATA_DIR": str(populated_settings.data_dir)}
    exe = os.path.join(os.path.dirname(sys.executable), "affectwatch")
    res = subprocess.run([exe, "sql", "--file", str(REPO_ROOT / "sql" / "examples" / "06_suppressed_cells.sql"),
                          ], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "suppressed: fewer than 3 devices" in res.stdout


def test_repl_counts_failures(session, capsys):
    assert repl(session, ["select 1;", "select * from wh.alerts;", "bogus sql;"], sys.stdout) == 2


def test_interactive_lines_keep_readline_history(tmp_path, monkeypatch):
    import builtins

    from analyst.sqlshell import CONTINUE, PROMPT, _interactive_lines

    typed = iter(["select 1", "  as a;", ".quit"])
    prompts = []

    def fake_input(prompt):
        prompts.append(prompt)
        try:
            line = next(typed)
        except StopIteration:
            raise EOFError from None
        import readline

        readline.add_history(line)
        return line

    monkeypatch.setattr(builtins, "input", fake_input)
    history = tmp_path / "hist" / "sql_history"
    assert list(_interactive_lines(history)) == ["select 1", "  as a;", ".quit"]
    assert prompts == [PROMPT, CONTINUE, PROMPT, PROMPT]
    assert "as a;" in history.read_text()


@pytest.mark.parametrize("example", sorted((REPO_ROOT / "sql" / "examples").glob("*.sql")), ids=lambda p: p.name)
def test_every_documented_example_runs_as_a_file(session, example):
    """What `affectwatch sql --file sql/examples/<file>` does: no statement fails, a result is printed."""
    out = io.StringIO()
    assert repl(session, example.read_text().splitlines(), out) == 0, out.getvalue()
    assert "error:" not in out.getvalue() and "row" in out.getvalue()
