"""`affectwatch` console script. Each area registers its own commands (thin orchestrators).

Heavy imports (statsmodels, streamlit, kafka) happen inside the command functions so that
`affectwatch --help` stays fast.
"""
from __future__ import annotations

import typer

from affectwatch.logs import configure
from affectwatch.settings import get_settings

app = typer.Typer(
    name="affectwatch",
    help="AffectWatch: public-health affect surveillance (edge affect aggregates + syndromic data).",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks: print figures, last line one JSON object.", no_args_is_help=True)
warehouse_app = typer.Typer(help="Create, migrate and compact the DuckLake warehouse.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(warehouse_app, name="warehouse")


@app.callback()
def _main() -> None:
    s = get_settings()
    configure(s.log_level, s.log_format, s.log_path)


@warehouse_app.command("migrate")
def warehouse_migrate() -> None:
    """Create the warehouse (if needed) and apply pending migrations from sql/migrations."""
    from affectwatch.warehouse import migrate

    applied = migrate()
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


@warehouse_app.command("compact")
def warehouse_compact(
    expire_older_than: str = typer.Option(None, help="Also expire snapshots older than this interval, e.g. '30 days'."),
) -> None:
    """Merge small Parquet files and delete files that no snapshot references."""
    import json

    from affectwatch.warehouse import compact

    typer.echo(json.dumps(compact(expire_older_than=expire_older_than)))


@app.command("config-example")
def config_example() -> None:
    """Print every setting with its environment variable and default (config/affectwatch.example.env)."""
    from affectwatch.config_doc import render

    typer.echo(render(), nl=False)


def _register_all() -> None:
    from alerts import commands as alert_commands
    from analytics import commands as forecast_commands
    from analytics import detect_commands
    from analyst import commands as analyst_commands
    from dashboard import commands as dashboard_commands
    from demo import run as demo
    from ingest import affect_commands, sim_commands
    from ingest import commands as ingest_commands

    modules = (ingest_commands, sim_commands, forecast_commands, detect_commands, alert_commands,
               dashboard_commands, analyst_commands, demo, affect_commands)
    for mod in modules:
        mod.register(app, bench_app)


_register_all()

if __name__ == "__main__":  # pragma: no cover
    app()
