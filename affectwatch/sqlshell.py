"""`affectwatch sql`: an analyst DuckDB session on the warehouse (read-only, views installed).

- ``affectwatch sql`` opens an interactive shell: statements end with ``;``, dot-commands
  (``.tables``, ``.views``, ``.describe VIEW``, ``.snapshots``, ``.mode csv|json|table``,
  ``.help``, ``.quit``) and readline history in ``<data_dir>/sql_history``.
- ``affectwatch sql --query "select ..." --format csv|json|table`` runs one query for scripts.
- ``--snapshot N`` or ``--as-of TIMESTAMP`` attach the warehouse as of a DuckLake snapshot.

By default the session is in *analyst mode* (see ``affectwatch.sql_guard``): only reads of the
analyst views. ``--raw`` lifts the view restriction for pipeline engineers; the warehouse stays
attached read-only either way.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import typer

from affectwatch.logs import get_logger
from affectwatch.settings import Settings, get_settings

log = get_logger(__name__)

FORMATS = ("table", "csv", "json")
PROMPT, CONTINUE = "affectwatch> ", "        ...> "
HELP = """\
Statements end with ';' and may span lines. Views live in the catalog 'analyst' (the default here).
  .tables              list the analyst views and macros
  .views               list them with their descriptions
  .describe VIEW       columns of a view with types, units and descriptions
  .snapshots           warehouse snapshots (for --snapshot / --as-of time travel)
  .mode table|csv|json output format
  .help                this help
  .quit / .exit        leave (Ctrl-D works too)
Example: select * from affect_region_week where region_id = '06' order by week_start;"""


class SqlShellError(Exception):
    """A user-facing error of the SQL shell (bad option, failed query)."""


@dataclass
class Session:
    """An open analyst session: connection, settings, mode and output format."""

    con: object
    settings: Settings
    raw: bool = False
    fmt: str = "table"
    catalog_docs: dict = field(default_factory=dict)

    def run(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run ``sql`` (after the analyst guard unless raw); returns (column names, rows) of the last statement."""
        import duckdb

        from affectwatch.sql_guard import check_analyst_statement

        if not self.raw:
            check_analyst_statement(self.con, sql)
        try:
            cur = self.con.execute(sql)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cols else []
        except duckdb.Error as exc:
            raise SqlShellError(str(exc)) from exc
        return cols, rows


def open_session(
    settings: Settings | None = None,
    *,
    snapshot: int | None = None,
    as_of: str | None = None,
    raw: bool = False,
    fmt: str = "table",
) -> Session:
    """Attach the warehouse read-only (optionally as of a snapshot), install the views, lock the session."""
    import duckdb

    from affectwatch.catalog_docs import load_catalog
    from affectwatch.views import CATALOG, install_views
    from affectwatch.warehouse import connect

    s = settings or get_settings()
    if fmt not in FORMATS:
        raise SqlShellError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        con = connect(s, read_only=True, use=False, snapshot=snapshot, as_of=as_of)
    except (duckdb.Error, ValueError) as exc:
        raise SqlShellError(f"cannot attach the warehouse{_as_of_text(snapshot, as_of)}: {exc}") from exc
    try:
        install_views(con, s)
    except RuntimeError as exc:
        raise SqlShellError(f"{exc} (does the warehouse{_as_of_text(snapshot, as_of)} hold the migrated tables?)") from exc
    con.execute(f"use {CATALOG}")
    _lock_down(con, s)
    docs = {v["name"]: v for v in load_catalog()["views"]}
    log.debug("sql session opened", raw=raw, snapshot=snapshot, as_of=as_of)
    return Session(con, s, raw=raw, fmt=fmt, catalog_docs=docs)


def _as_of_text(snapshot, as_of) -> str:
    if snapshot is not None:
        return f" at snapshot {snapshot}"
    return f" as of {as_of}" if as_of else ""


def _lock_down(con, s: Settings) -> None:
    """No file access outside the warehouse, and no way to change that from inside the session."""
    local = [p for p in (s.data_path, s.catalog.removeprefix("sqlite:")) if "://" not in p and not p.startswith("postgres:")]
    if len(local) == 2:  # remote storage needs external access; the statement guard still applies
        dirs = sorted({str(Path(p).resolve().parent if not p.endswith("/") else Path(p).resolve()) + "/" for p in local})
        con.execute("set allowed_directories = ?", [dirs])
        con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


# -- output ------------------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def render(cols: list[str], rows: list[tuple], fmt: str) -> str:
    """Format a result as an aligned text table, CSV (header + rows) or a JSON array of objects."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows([["" if v is None else _plain(v) for v in r] for r in rows])
        return buf.getvalue().rstrip("\n")
    if fmt == "json":
        return json.dumps([dict(zip(cols, (_plain(v) for v in r))) for r in rows], default=str, indent=None)
    if not cols:
        return "ok"
    cells = [["NULL" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(_plain(v))) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |", line]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in cells]
    out += [line, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"]
    return "\n".join(out)


# -- REPL --------------------------------------------------------------------------------------

def dot_command(session: Session, line: str) -> str | None:
    """Run a dot-command; returns its output, or None for .quit."""
    cmd, _, arg = line.strip().partition(" ")
    arg = arg.strip().rstrip(";")
    if cmd in (".quit", ".exit"):
        return None
    if cmd == ".help":
        return HELP
    if cmd == ".mode":
        if arg not in FORMATS:
            return f"error: .mode takes one of {', '.join(FORMATS)}"
        session.fmt = arg
        return f"output format: {arg}"
    if cmd in (".tables", ".views"):
        return _list_views(session, with_docs=cmd == ".views")
    if cmd == ".describe":
        return _describe(session, arg)
    if cmd == ".snapshots":
        cur = session.con.execute("select snapshot_id, snapshot_time, changes from ducklake_snapshots(?) order by snapshot_id",
                                  [session.settings.warehouse.alias])
        return render([c[0] for c in cur.description], cur.fetchall(), session.fmt)
    return f"error: unknown command {cmd}; try .help"


def _list_views(session: Session, with_docs: bool) -> str:
    from affectwatch.views import mart_names

    names = mart_names()
    if not with_docs:
        return "\n".join(names)
    rows = [(n, (session.catalog_docs.get(n, {}).get("description") or "").strip().split("\n")[0]) for n in names]
    return render(["view", "description"], rows, session.fmt)


def _describe(session: Session, name: str) -> str:
    from affectwatch.views import CATALOG, mart_names

    if name not in mart_names():
        return f"error: no analyst view named {name!r}; see .tables"
    doc = session.catalog_docs.get(name, {})
    columns = {c["name"]: c for c in doc.get("columns", [])}
    if doc.get("kind") == "macro":
        return f"{name}: {doc.get('description', '').strip()}"
    types = session.con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = ? and schema_name = 'main' "
        "and table_name = ? order by column_index", [CATALOG, name]).fetchall()
    rows = [(c, t, columns.get(c, {}).get("unit", ""), columns.get(c, {}).get("description", "")) for c, t in types]
    head = f"{name}: {(doc.get('description') or '').strip()}\ngrain: {doc.get('grain', '')}\n"
    return head + render(["column", "type", "unit", "description"], rows, session.fmt)


def statements(lines: Iterable[str]) -> Iterable[str]:
    """Group input lines into complete statements (ending with ';') and dot-commands."""
    buf: list[str] = []
    for line in lines:
        if not buf and line.strip().startswith("."):
            yield line.strip()
        elif line.strip() or buf:
            buf.append(line)
            if line.rstrip().endswith(";"):
                yield "\n".join(buf)
                buf = []
    if "".join(buf).strip():
        yield "\n".join(buf)


def repl(session: Session, lines: Iterable[str], out: TextIO) -> int:
    """Read-eval-print over ``lines``; returns the number of failed statements."""
    from affectwatch.sql_guard import AnalystQueryError

    failures = 0
    for item in statements(lines):
        if item.startswith("."):
            text = dot_command(session, item)
            if text is None:
                break
            print(text, file=out)
            continue
        try:
            cols, rows = session.run(item)
            print(render(cols, rows, session.fmt), file=out)
        except (AnalystQueryError, SqlShellError) as exc:
            failures += 1
            print(f"error: {exc}", file=out)
    return failures


def _interactive_lines(history: Path) -> Iterable[str]:
    """Lines typed at a terminal, with readline editing and a persistent history file."""
    try:
        import readline
    except ImportError:  # pragma: no cover - not on Linux
        readline = None
    if readline is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
        try:
            readline.read_history_file(history)
        except (FileNotFoundError, OSError):
            pass
        readline.set_history_length(2000)
    prompt = PROMPT
    try:
        while True:
            try:
                line = input(prompt)
            except EOFError:
                print()
                return
            except KeyboardInterrupt:
                print("^C")
                prompt = PROMPT
                continue
            stripped = line.strip()
            if stripped.startswith(".") and prompt == PROMPT:
                prompt = PROMPT
            elif stripped:
                prompt = PROMPT if stripped.endswith(";") else CONTINUE
            yield line
    finally:
        if readline is not None:
            try:
                readline.write_history_file(history)
            except OSError:
                pass


# -- CLI ---------------------------------------------------------------------------------------

def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""

    @app.command("sql")
    def sql(
        query: str = typer.Option(None, "--query", "-q", help="Run one query and exit (for scripts)."),
        file: Path = typer.Option(None, "--file", "-f", help="Run the statements in a .sql file and exit."),
        fmt: str = typer.Option("table", "--format", help="Output format: table, csv or json."),
        snapshot: int = typer.Option(None, "--snapshot", help="Attach the warehouse as of this DuckLake snapshot id."),
        as_of: str = typer.Option(None, "--as-of", help="Attach the warehouse as it was at this timestamp."),
        raw: bool = typer.Option(False, "--raw", help="Allow the raw warehouse tables (pipeline engineers); still read-only."),
    ) -> None:
        """Analyst SQL on the warehouse: read-only, documented views (sql/catalog.yaml), time travel."""
        from affectwatch.sql_guard import AnalystQueryError

        if query and file:
            _fail("give either --query or --file, not both")
        try:
            session = open_session(snapshot=snapshot, as_of=as_of, raw=raw, fmt=fmt)
        except SqlShellError as exc:
            _fail(str(exc))
        if query is not None:
            try:
                cols, rows = session.run(query)
            except (AnalystQueryError, SqlShellError) as exc:
                _fail(str(exc))
            typer.echo(render(cols, rows, session.fmt))
            return
        if file is not None:
            if not file.exists():
                _fail(f"no such file: {file}")
            failures = repl(session, file.read_text().splitlines(), sys.stdout)
            raise typer.Exit(1 if failures else 0)
        if sys.stdin.isatty():
            typer.echo(f"AffectWatch SQL{_as_of_text(snapshot, as_of)} - read-only{' (raw tables allowed)' if raw else ''}. "
                       "Type .help for help, .quit to leave.")
            repl(session, _interactive_lines(session.settings.data_dir / "sql_history"), sys.stdout)
        else:
            failures = repl(session, sys.stdin.read().splitlines(), sys.stdout)
            raise typer.Exit(1 if failures else 0)

    @bench_app.command("sql")
    def bench_sql(
        fixture: bool = typer.Option(False, help="Build the fixture warehouse in a temporary dir and time that."),
        repeat: int = typer.Option(3, help="Runs per view (the best is reported)."),
    ) -> None:
        """Time opening an analyst session and a full scan of every analyst view; last line is JSON."""
        import tempfile
        import time

        from affectwatch.views import mart_names

        s = get_settings()
        tmp = None
        if fixture:
            from affectwatch.fixture_data import build_fixture_warehouse

            tmp = tempfile.TemporaryDirectory(prefix="aw-bench-sql-")
            s = Settings(data_dir=Path(tmp.name) / "var")
            build_fixture_warehouse(s)
        t0 = time.perf_counter()
        session = open_session(s)
        open_s = time.perf_counter() - t0
        timings = {}
        for name in mart_names():
            sql = f"select count(*) from {name}(now())" if name.endswith("_known_at") else f"select count(*) from {name}"
            best = float("inf")
            for _ in range(max(1, repeat)):
                t = time.perf_counter()
                session.run(sql)
                best = min(best, time.perf_counter() - t)
            timings[name] = round(best, 4)
            typer.echo(f"{name:24s} {best * 1000:8.1f} ms")
        session.con.close()
        if tmp is not None:
            tmp.cleanup()
        slowest = max(timings, key=timings.get)
        typer.echo(json.dumps({"open_session_s": round(open_s, 3), "views": len(timings), "slowest_view": slowest,
                               "slowest_view_s": timings[slowest], "total_view_s": round(sum(timings.values()), 3)}))

    @app.command("sql-fixture")
    def sql_fixture(
        seed: int = typer.Option(0, help="Seed of the simulated parts."),
        force: bool = typer.Option(False, help="Add the fixture even if the warehouse already holds affect windows."),
    ) -> None:
        """Fill the configured warehouse with the fixture data (real FluSight/ILINet symptoms, SIMULATED affect)."""
        from affectwatch.fixture_data import build_fixture_warehouse
        from affectwatch.warehouse import connect, migrate

        s = get_settings()
        con = connect(s)
        try:
            migrate(con)
            n = con.execute("select count(*) from affect_windows").fetchone()[0]
        finally:
            con.close()
        if n and not force:
            _fail(f"the warehouse in {s.data_dir} already holds {n} affect windows; use an empty "
                  "AFFECTWATCH_DATA_DIR or --force")
        counts = build_fixture_warehouse(s, seed=seed)
        typer.echo(f"fixture warehouse in {s.data_dir}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))

    @app.command("sql-docs")
    def sql_docs(check: bool = typer.Option(False, "--check", help="Only check that docs/sql_catalog.md is current.")) -> None:
        """Render sql/catalog.yaml and the example headers into docs/sql_catalog.md."""
        from affectwatch.catalog_docs import DOCS_FILE, docs_up_to_date, write_docs

        if check:
            if not docs_up_to_date():
                _fail(f"{DOCS_FILE} is out of date; run `affectwatch sql-docs`")
            typer.echo(f"{DOCS_FILE} is up to date")
            return
        typer.echo(f"wrote {write_docs()}")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
