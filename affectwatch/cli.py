"""`affectwatch` console script. Each area registers its own commands (thin orchestrators).

The areas plug in through the ``affectwatch.commands`` entry points (pyproject.toml), so this shared
package imports nothing from them. Heavy imports (statsmodels, streamlit, kafka) happen inside the
command functions so that `affectwatch --help` stays fast.
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

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


ENTRY_POINT_GROUP = "affectwatch.commands"
# The entry points every install has, in the order they register (= the order `--help` lists them).
# Entry points of this group not named here (another installed package's) register after them, by name.
COMMAND_MODULES = ("ingest", "simulate", "forecast", "detect", "alerts", "dashboard", "analyst", "demo",
                   "survey-affect")


class CommandRegistryError(RuntimeError):
    """An area's commands could not be registered (entry point missing or failing); the message names it."""


def command_entry_points() -> list[EntryPoint]:
    """The ``affectwatch.commands`` entry points in registration order; raises if one of COMMAND_MODULES is missing."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    missing = [name for name in COMMAND_MODULES if name not in found]
    if missing:
        raise CommandRegistryError(
            f"affectwatch: entry point(s) {', '.join(missing)} of group {ENTRY_POINT_GROUP!r} not installed, so "
            "their commands would be missing; reinstall the package (`make setup`, or `pip install -e .`)")
    return [found[name] for name in COMMAND_MODULES] + sorted(
        (ep for name, ep in found.items() if name not in COMMAND_MODULES), key=lambda ep: ep.name)


def register_commands(eps: list[EntryPoint], main: typer.Typer, bench: typer.Typer) -> None:
    """Call each entry point's ``register(main, bench)``; a failing one raises an error naming it."""
    for ep in eps:
        try:
            ep.load()(main, bench)
        except Exception as exc:
            raise CommandRegistryError(f"affectwatch: entry point {ep.name} = {ep.value!r} of group "
                                       f"{ENTRY_POINT_GROUP!r} failed to register its commands: "
                                       f"{type(exc).__name__}: {exc}") from exc


register_commands(command_entry_points(), app, bench_app)

if __name__ == "__main__":  # pragma: no cover
    app()
