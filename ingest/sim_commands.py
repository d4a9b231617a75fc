"""CLI commands for this area (registered by affectwatch.cli)."""
from __future__ import annotations

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the `affectwatch` app and its `bench` group."""
