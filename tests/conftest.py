"""Shared fixtures. Area-specific fixtures live in tests/fixtures/<area>.py (plugins below)."""
from __future__ import annotations

from pathlib import Path

import pytest

from affectwatch.settings import REPO_ROOT, Settings

pytest_plugins = ["tests.fixtures.kafka", "tests.fixtures.smtp", "tests.fixtures.data", "tests.fixtures.postgres"]

DATA = REPO_ROOT / "data"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data dir (warehouse, extensions, logs) is a fresh temporary folder."""
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
def warehouse(settings: Settings):
    """A migrated DuckLake warehouse (SQLite catalog) and an open connection to it."""
    from affectwatch.warehouse import connect, migrate

    con = connect(settings)
    migrate(con)
    yield con
    con.close()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The vendored real data (data/SOURCES.md)."""
    return DATA
