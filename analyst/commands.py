"""CLI of the analyst area: `affectwatch sql`, `sql-docs`, `analyst refresh|publications`, `bench sql`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from affectwatch.settings import Settings, get_settings
from analyst.sqlshell import SqlShellError, _as_of_text, _interactive_lines, open_session, render, repl

analyst_app = typer.Typer(help="The analyst store: suppressed marts published for `affectwatch sql`.",
                          no_args_is_help=True)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""
    app.add_typer(analyst_app, name="analyst")

    @analyst_app.command("refresh")
    def analyst_refresh(
        warehouse_snapshot: int = typer.Option(None, help="Publish the warehouse as of this DuckLake snapshot."),
    ) -> None:
        """Publish the marts into a new analyst-store publication (closed periods only; unchanged = no-op)."""
        from analyst.store import StoreError, refresh

        try:
            summary = refresh(get_settings(), warehouse_snapshot=warehouse_snapshot)
        except StoreError as exc:
            _fail(str(exc))
        typer.echo(json.dumps(summary))

    @analyst_app.command("publications")
    def analyst_publications(fmt: str = typer.Option("table", "--format", help="table, csv or json.")) -> None:
        """List the analyst-store publications (what --snapshot / --as-of choose from)."""
        try:
            session = open_session(get_settings(), fmt=fmt)
        except SqlShellError as exc:
            _fail(str(exc))
        typer.echo(render(*session.run("select * from publications order by publication_id"), session.fmt))

    @app.command("sql")
    def sql(
        query: str = typer.Option(None, "--query", "-q", help="Run one query and exit (for scripts)."),
        file: Path = typer.Option(None, "--file", "-f", help="Run the statements in a .sql file and exit."),
        fmt: str = typer.Option("table", "--format", help="Output format: table, csv or json."),
        snapshot: int = typer.Option(None, "--snapshot", help="Open this analyst-store publication (--raw: DuckLake snapshot)."),
        as_of: str = typer.Option(None, "--as-of", help="Open the publication in force at this timestamp."),
        raw: bool = typer.Option(False, "--raw", help="Pipeline engineers: the raw warehouse, read-only (needs access to its files)."),
    ) -> None:
        """Analyst SQL on the suppressed analyst store: read-only, documented views (sql/catalog.yaml), time travel."""
        from analyst.guard import AnalystQueryError

        if query and file:
            _fail("give either --query or --file, not both")
        try:
            session = open_session(get_settings(), snapshot=snapshot, as_of=as_of, raw=raw, fmt=fmt)
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
            where = "raw warehouse" if raw else f"analyst store, publication {session.publication}"
            typer.echo(f"AffectWatch SQL ({where}{_as_of_text(snapshot, as_of)}) - read-only. "
                       "Type .help for help, .quit to leave.")
            repl(session, _interactive_lines(session.settings.data_dir / "sql_history"), sys.stdout)
        else:
            failures = repl(session, sys.stdin.read().splitlines(), sys.stdout)
            raise typer.Exit(1 if failures else 0)

    @bench_app.command("sql")
    def bench_sql(
        fixture: bool = typer.Option(False, help="Build the fixture warehouse and its analyst store in a temporary dir."),
        repeat: int = typer.Option(3, help="Runs per view (the best is reported)."),
    ) -> None:
        """Time a refresh (with --fixture), opening an analyst session and a full scan of every view; last line JSON."""
        import tempfile
        import time

        from analyst.store import refresh
        from analyst.views import mart_names

        s = get_settings()
        tmp = None
        refresh_s = None
        if fixture:
            from demo.fixture_data import build_fixture_warehouse

            tmp = tempfile.TemporaryDirectory(prefix="aw-bench-sql-")
            s = Settings(data_dir=Path(tmp.name) / "var")
            build_fixture_warehouse(s)
            t0 = time.perf_counter()
            refresh(s)
            refresh_s = round(time.perf_counter() - t0, 3)
            typer.echo(f"{'analyst refresh':24s} {refresh_s * 1000:8.1f} ms")
        t0 = time.perf_counter()
        session = open_session(s)
        open_s = time.perf_counter() - t0
        timings = {}
        for name in mart_names():
            sql = (f"select count(*) from {name}(now())" if name.endswith("_known_at") else f"select count(*) from {name}")
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
        typer.echo(json.dumps({"open_session_s": round(open_s, 3), "refresh_s": refresh_s, "views": len(timings),
                               "slowest_view": slowest, "slowest_view_s": timings[slowest],
                               "total_view_s": round(sum(timings.values()), 3)}))

    @app.command("sql-docs")
    def sql_docs(check: bool = typer.Option(False, "--check", help="Only check that docs/sql_catalog.md is current.")) -> None:
        """Render sql/catalog.yaml and the example headers into docs/sql_catalog.md."""
        from analyst.catalog_docs import DOCS_FILE, docs_up_to_date, write_docs

        if check:
            if not docs_up_to_date():
                _fail(f"{DOCS_FILE} is out of date; run `affectwatch sql-docs`")
            typer.echo(f"{DOCS_FILE} is up to date")
            return
        typer.echo(f"wrote {write_docs()}")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
