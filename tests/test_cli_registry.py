"""The shared package imports nothing above it; the areas plug their commands in through entry points."""
from __future__ import annotations

import ast
import tomllib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
import typer

from affectwatch import cli

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# the area packages: every package pyproject installs except the shared one
AREAS = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]} - {"affectwatch"}
DECLARED = PYPROJECT["project"]["entry-points"][cli.ENTRY_POINT_GROUP]

# what `affectwatch --help` lists, in its order (commands, then groups, each in registration order)
TOP_LEVEL = ["config-example", "simulate", "load-symptoms", "detect", "detectors", "schedule", "smtp-sink",
             "dashboard", "sql", "sql-docs", "sql-fixture", "demo", "load-affect", "bench", "warehouse", "broker",
             "ingest", "forecast", "alerts", "users", "analyst"]
BENCH = ["ingest", "forecast", "forecast-scale", "detect", "alert-burden", "detect-scale", "email", "dashboard", "sql"]


def _imported_packages(path: Path) -> set[str]:
    """Top-level package of every absolute import anywhere in the module (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_areas_are_known():
    assert AREAS == {"ingest", "analytics", "alerts", "dashboard", "analyst", "demo"}


def test_the_shared_package_imports_no_area_package():
    offending = {str(p.relative_to(ROOT)): sorted(_imported_packages(p) & AREAS)
                 for p in sorted((ROOT / "affectwatch").rglob("*.py"))}
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text("def f():\n    from alerts import commands\n    import ingest.sink\n")
    assert _imported_packages(mod) & AREAS == {"alerts", "ingest"}


def test_declared_installed_and_ordered_entry_points_agree():
    assert set(DECLARED) == set(cli.COMMAND_MODULES)
    installed = {ep.name: ep.value for ep in entry_points(group=cli.ENTRY_POINT_GROUP)}
    assert {n: installed.get(n) for n in DECLARED} == DECLARED, "stale install: run `make setup`"
    assert [ep.name for ep in cli.command_entry_points()][:len(cli.COMMAND_MODULES)] == list(cli.COMMAND_MODULES)
    for value in DECLARED.values():
        assert value.split(".")[0] in AREAS and value.endswith(":register")


def _names(eps: list[EntryPoint]) -> tuple[list[str], list[str]]:
    main, bench = typer.Typer(), typer.Typer()
    cli.register_commands(eps, main, bench)
    main.add_typer(bench, name="bench")
    cmd = typer.main.get_command(main)
    return [n for n in cmd.commands if n != "bench"], list(cmd.commands["bench"].commands)


def test_every_entry_point_registers_commands_and_the_cli_has_them_all():
    expected_top, expected_bench = set(), set()
    for ep in cli.command_entry_points():
        top, bench = _names([ep])
        assert top or bench, f"entry point {ep.name} registers no command"
        expected_top |= set(top)
        expected_bench |= set(bench)
    app = typer.main.get_command(cli.app)
    assert list(app.commands) == TOP_LEVEL
    assert list(app.commands["bench"].commands) == BENCH
    assert set(TOP_LEVEL) == expected_top | {"config-example", "bench", "warehouse"}
    assert set(BENCH) == expected_bench


def test_a_missing_entry_point_is_an_error_naming_it(monkeypatch):
    everything = entry_points(group=cli.ENTRY_POINT_GROUP)
    monkeypatch.setattr(cli, "entry_points", lambda group: [ep for ep in everything if ep.name != "alerts"])
    with pytest.raises(cli.CommandRegistryError, match=r"entry point\(s\) alerts of group 'affectwatch.commands'"):
        cli.command_entry_points()


def test_a_failing_entry_point_is_an_error_naming_it():
    broken = EntryPoint(name="broken-area", value="no_such_area.commands:register", group=cli.ENTRY_POINT_GROUP)
    with pytest.raises(cli.CommandRegistryError, match="entry point broken-area .*ModuleNotFoundError"):
        cli.register_commands([broken], typer.Typer(), typer.Typer())
